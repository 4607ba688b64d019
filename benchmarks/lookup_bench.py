"""Exact lookup and "did you mean" speed of the code catalog.

Run: `python -m benchmarks.lookup_bench` (uses CODEBOT_CODES_DB or data/build/codes.sqlite,
building it into a temporary directory when neither exists). Targets: open well under a
second, exact lookup p50 <= 0.2 ms (also as of today), as of an older date p50 < 0.5 ms,
suggestion < 5 ms.
"""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import date
from pathlib import Path

from benchmarks.common import codes_database, percentile
from bot.clock import utc_today
from bot.codes.catalog import CodeCatalog

FIXED_CODES = [
    "E11.9", "e119", "E11", "S72.001A", "T36.0X1A", "I10", "J44.9", "Z00.00", "B00",
    "0DTJ4ZZ", "0dt", "BW03ZZZ", "A0425", "S0189", "-LT", "RT", "E08-E13", "E11.99", "ZZZZ",
]  # fmt: skip
TYPOS = ["E11.99", "S72001", "0DTJ4ZX", "A0426", "Z99.99", "S72.001Z", "R69X", "J44.8"]


def _sample_codes(path: Path, n: int, seed: int = 7) -> list[str]:
    """A reproducible mix of real codes from every system, as users would type them."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT code FROM codes WHERE kind NOT IN ('chapter','block','section','body_system')"
        ).fetchall()
    rng = random.Random(seed)
    return [code for (code,) in rng.sample(rows, n)]


def _percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/max in milliseconds."""
    return {
        "p50_ms": round(percentile(samples, 50) * 1000, 4),
        "p95_ms": round(percentile(samples, 95) * 1000, 4),
        "max_ms": round(max(samples) * 1000, 4),
    }


def run(n: int = 2000) -> dict[str, object]:
    """Measure open, exact lookup and suggestion times; returns the figures."""
    path, tmp = codes_database(search_index=False)
    try:
        started = time.perf_counter()
        catalog = CodeCatalog.open(path)
        open_ms = (time.perf_counter() - started) * 1000
        codes = FIXED_CODES + _sample_codes(path, n)
        for code in codes[:200]:
            catalog.lookup(code)  # warm the OS page cache for a fair steady-state figure
        lookups: list[float] = []
        for code in codes:
            t0 = time.perf_counter()
            catalog.lookup(code)
            lookups.append(time.perf_counter() - t0)
        # As the service asks: today's date (the release in force), then an older date of
        # service (the release in force then, from the stored spans). Fresh catalogs, so
        # every card is built, not served from the card cache.
        dated: dict[str, list[float]] = {}
        for name, day in (("lookup_today", utc_today()), ("lookup_on_date", date(2025, 3, 1))):
            fresh = CodeCatalog.open(path)
            for code in codes[:200]:
                fresh.lookup(code, date(2020, 1, 1))  # warm the page cache, not these days
            dated[name] = []
            for code in codes:
                t0 = time.perf_counter()
                fresh.lookup(code, day)
                dated[name].append(time.perf_counter() - t0)
            fresh.close()
        suggestions: list[float] = []
        for typo in TYPOS * 20:
            t0 = time.perf_counter()
            catalog.suggest(typo)
            suggestions.append(time.perf_counter() - t0)
        catalog.close()
        return {
            "database": str(path),
            "open_ms": round(open_ms, 3),
            "lookup_count": len(lookups),
            "lookup": _percentiles(lookups),
            "lookup_today_count": len(dated["lookup_today"]),
            "lookup_today": _percentiles(dated["lookup_today"]),
            "lookup_on_date_count": len(dated["lookup_on_date"]),
            "lookup_on_date": _percentiles(dated["lookup_on_date"]),
            "suggest_count": len(suggestions),
            "suggest": _percentiles(suggestions),
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


def main() -> None:
    """Print the figures."""
    result = run()
    print(f"database      {result['database']}")
    print(f"open          {result['open_ms']} ms")
    for name in ("lookup", "lookup_today", "lookup_on_date", "suggest"):
        figures = result[name]
        assert isinstance(figures, dict)
        print(
            f"{name:<15} p50 {figures['p50_ms']} ms  p95 {figures['p95_ms']} ms"
            f"  max {figures['max_ms']} ms  (n={result[name + '_count']})"
        )


if __name__ == "__main__":
    main()
