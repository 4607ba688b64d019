"""Whole-system figures: code DB build time, `codebot ask` cold start, resident memory with
everything loaded, and charged lookups per second through `LookupService.handle`.

Targets (issue 2 and 3): build ≤ 60 s, cold start ≤ 1.5 s, RSS ≤ 400 MB, ≥ 2,000 charged
lookups/s on one core. `python -m benchmarks.system_bench` runs it alone.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import configured_codes_db
from bot.config import Settings

COLD_START_RUNS = 5
THROUGHPUT_REQUESTS = 4000
MEMORY_PROBE = """
import asyncio, sys
from pathlib import Path
from bot.app import open_service
from bot.config import Settings
from bot.model import Request, UserRef

async def main() -> None:
    settings = Settings(codes_db=Path(sys.argv[1]), database_url=sys.argv[2],
                        quota={"guest_plan": "unlimited"})
    async with open_service(settings, warm=True) as service:
        user = UserRef("bench", "t", "u")
        for text in sys.argv[3:]:
            await service.handle(Request(user, text))
        for prefix in ("E11", "diab", "knee br", "0DT"):
            service.autocomplete(prefix)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                print(int(line.split()[1]) // 1024)

asyncio.run(main())
"""
QUERIES = [
    "E11.9",
    "S72.001A I10 A0425",
    "0DTJ4ZZ",
    "E11",
    "0DT",
    "diabtes",
    "knee brace",
    "heart attack",
    "search hcpcs wheelchair",
    "pnuemonia",
    "-LT",
    "77306",
]


def measure_build() -> float:
    """Seconds for a full `codebot data build` into a scratch file."""
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "data",
                "build",
                "--output",
                str(Path(scratch) / "codes.sqlite"),
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def measure_cold_start(codes_db: Path) -> dict[str, float]:
    """Wall time of `codebot ask "/code E11.9"` in a new process (DB already built)."""
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "CODEBOT_CODES_DB": str(codes_db),
            "CODEBOT_DATABASE_URL": f"sqlite:///{scratch}/state.sqlite",
        }
        for run in range(COLD_START_RUNS):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "bot.cli", "ask", "--user", f"u{run}", "/code E11.9"],
                check=True,
                capture_output=True,
                env=env,
            )
            times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}


def measure_memory(codes_db: Path) -> int:
    """Peak resident MB of a process with the service, search vocabulary and answers loaded."""
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                MEMORY_PROBE,
                str(codes_db),
                f"sqlite:///{scratch}/state.sqlite",
                *QUERIES,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    return int(out.stdout.strip().splitlines()[-1])


async def _throughput(codes_db: Path, scratch: str) -> float:
    from bot.app import open_service
    from bot.model import Request, UserRef

    settings = Settings(
        codes_db=codes_db,
        database_url=f"sqlite:///{scratch}/state.sqlite",
        quota={"guest_plan": "pro", "plans": {"pro": {"limit": 10_000_000, "period": "monthly"}}},
    )
    async with open_service(settings, warm=True) as service:
        user = UserRef("bench", "team", "user")
        codes = ["E11.9", "I10", "A0425", "0DTJ4ZZ", "S72.001A", "J45.909", "Z00.00", "LT"]
        started = time.perf_counter()
        for number in range(THROUGHPUT_REQUESTS):
            reply = await service.handle(
                Request(user, codes[number % len(codes)], request_id=f"r{number}")
            )
            if not reply.notice:
                raise RuntimeError("lookup was not charged")
        return THROUGHPUT_REQUESTS / (time.perf_counter() - started)


def measure_throughput(codes_db: Path) -> float:
    """Charged single-code lookups per second through LookupService.handle (one core)."""
    with tempfile.TemporaryDirectory() as scratch:
        return asyncio.run(_throughput(codes_db, scratch))


def run() -> dict[str, Any]:
    """Measure and print every figure with its target."""
    codes_db = configured_codes_db()
    build_s = measure_build()
    cold = measure_cold_start(codes_db)
    rss_mb = measure_memory(codes_db)
    per_second = measure_throughput(codes_db)
    rows = [
        ("code DB build", f"{build_s:.1f} s", "≤ 60 s", build_s <= 60),
        (
            "`codebot ask` cold start (median)",
            f"{cold['median_s']:.2f} s",
            "≤ 1.5 s",
            cold["median_s"] <= 1.5,
        ),
        ("resident memory, all loaded", f"{rss_mb} MB", "≤ 400 MB", rss_mb <= 400),
        ("charged lookups/s via handle()", f"{per_second:,.0f}", "≥ 2,000", per_second >= 2000),
    ]
    print(f"{'figure':<36} {'value':>10}  {'target':<10} met")
    for name, value, target, met in rows:
        print(f"{name:<36} {value:>10}  {target:<10} {'yes' if met else 'NO'}")
    return {
        "build_seconds": round(build_s, 1),
        "cold_start_median_s": cold["median_s"],
        "rss_mb": rss_mb,
        "charged_lookups_per_s": round(per_second),
        "all_targets_met": all(row[3] for row in rows),
    }


if __name__ == "__main__":
    run()
