"""Run every benchmark in turn: `python -m benchmarks.run_all [NAME ...]`.

Each `benchmarks/<name>_bench.py` module exposes `run() -> dict` and prints its own table.
Modules not written yet are skipped, a failing one is reported and the rest still run, and a
summary table lists each benchmark's status, time and headline figures at the end.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

# Order matters only for reading the output: cheap ones first.
BENCHES: tuple[str, ...] = (
    "system_bench",
    "lookup_bench",
    "knowledge_bench",
    "search_bench",
    "hostile_bench",
    "quota_bench",
    "slack_bench",
    "discord_bench",
)


def _flatten(result: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Scalar figures of a (nested) result dict as (dotted key, text) pairs."""
    out: list[tuple[str, str]] = []
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{name}."))
        elif isinstance(value, bool):
            out.append((name, "yes" if value else "no"))
        elif isinstance(value, int | float):
            out.append((name, f"{value}"))
    return out


RESULT_PREFIX = "BENCH-RESULT-JSON: "


def run_all(names: Sequence[str] = BENCHES) -> dict[str, dict[str, Any]]:
    """Run the named benchmarks; returns {name: {"status", "seconds", "result"|"error"}}.

    Each benchmark runs in a fresh Python process, so one bench's memory and caches (the
    naive baseline loads every title) never slow or flatter the next one.
    """
    report: dict[str, dict[str, Any]] = {}
    for name in names:
        if importlib.util.find_spec(f"benchmarks.{name}") is None:
            report[name] = {"status": "missing", "seconds": 0.0}
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        report[name] = _run_child(name)
        report[name]["seconds"] = round(time.perf_counter() - started, 1)
    _print_summary(report)
    return report


def _run_child(name: str) -> dict[str, Any]:
    """Run one bench in a child process, echo its output, and parse its result line."""
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.run_all", "--child", name],
        stdout=subprocess.PIPE,
        text=True,
    )
    result: dict[str, Any] | None = None
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(line, end="", flush=True)
    if child.wait() != 0 or result is None:
        return {"status": "failed", "error": f"exit status {child.returncode}"}
    return {"status": "ok", "result": result}


def _child(name: str) -> int:
    """Inside the child: run the bench and print its result as one JSON line."""
    try:
        result = importlib.import_module(f"benchmarks.{name}").run()
    except Exception:  # reported by the parent as failed; the traceback is on stderr
        traceback.print_exc()
        return 1
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
    return 0


def _print_summary(report: dict[str, dict[str, Any]]) -> None:
    print("\n=== summary ===")
    for name, entry in report.items():
        print(f"{name}: {entry['status']} in {entry['seconds']} s")
        result = entry.get("result")
        if isinstance(result, dict):
            for key, value in _flatten(result):
                print(f"    {key:<44} {value}")
        elif "error" in entry:
            print(f"    {entry['error'][:200]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: optional bench names (with or without the `_bench` suffix)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"] and len(args) == 2:
        return _child(args[1])
    names = [a if a.endswith("_bench") else f"{a}_bench" for a in args] or list(BENCHES)
    report = run_all(names)
    return 1 if any(e["status"] == "failed" for e in report.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
