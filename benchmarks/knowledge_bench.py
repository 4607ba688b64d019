"""Coding knowledge: card lookup with the new fields, DRG/grouping/guideline answers, build.

Run: `python -m benchmarks.knowledge_bench` (uses CODEBOT_CODES_DB or data/build/codes.sqlite).
Targets: lookup with the coding block p50 <= 0.2 ms (as servers run: facts cached per code
and date after the first card), the knowledge part of the build well inside the 60 s build.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.common import codes_database, percentile
from bot.codes.catalog import CodeCatalog
from bot.codes.knowledge import KnowledgeBase
from bot.knowledge_answers import KnowledgeAnswers
from bot.knowledge_cards import with_coding

DAY = date(2026, 12, 1)
ANSWERS = [
    ("drg", "291"),
    ("group", "I50.20", "N17.9", "age", "72"),
    ("group", "K35.80", "0DTJ4ZZ", "E11.9", "I10", "age", "40", "sex", "F"),
    ("icd9", "250.00"),
    ("crosswalk", "E11.9"),
    ("guidelines", "sepsis"),
    ("guidelines", "diabetes insulin pump"),
    ("guideline", "I.C.1.d"),
]


def _ms(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 50) * 1000, 4),
        "p95_ms": round(percentile(samples, 95) * 1000, 4),
    }


def _codes(path: Path, n: int) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT code FROM codes WHERE billable = 1 AND system IN ('icd10cm', 'icd10pcs')"
        ).fetchall()
    return [code for (code,) in random.Random(11).sample(rows, n)]


def _knowledge_build_seconds(path: Path) -> float:
    """The knowledge tables alone, written into a scratch copy of the codes table."""
    from bot.codes.knowledge_build import build_knowledge

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "k.sqlite"
        conn = sqlite3.connect(scratch)
        conn.execute(f"ATTACH DATABASE '{path}' AS src")
        conn.execute("CREATE TABLE codes AS SELECT * FROM src.codes WHERE system = 'icd10cm'")
        conn.execute("DETACH DATABASE src")
        started = time.perf_counter()
        build_knowledge(conn, lambda _line: None)
        seconds = time.perf_counter() - started
        conn.close()
    return seconds


def run(n: int = 1000) -> dict[str, object]:
    """Measure lookups with the coding block (cold and cached), answers, knowledge build."""
    path, tmp = codes_database(search_index=False)
    try:
        catalog = CodeCatalog.open(path)
        knowledge = KnowledgeBase.open(path)
        knowledge.warm_up()
        codes = _codes(path, n)
        cold: list[float] = []
        for code in codes:
            t0 = time.perf_counter()
            with_coding(catalog.lookup(code, DAY), knowledge, DAY)
            cold.append(time.perf_counter() - t0)
        warm: list[float] = []
        for code in codes:
            t0 = time.perf_counter()
            with_coding(catalog.lookup(code, DAY), knowledge, DAY)
            warm.append(time.perf_counter() - t0)
        plain: list[float] = []
        for code in codes:
            t0 = time.perf_counter()
            catalog.lookup(code, DAY)
            plain.append(time.perf_counter() - t0)
        answers = KnowledgeAnswers(knowledge, catalog)
        timings: dict[str, float] = {}
        for args in ANSWERS:
            samples = []
            for _ in range(20):
                t0 = time.perf_counter()
                answers.answer(args, DAY)
                samples.append(time.perf_counter() - t0)
            timings[" ".join(args)] = round(percentile(samples, 50) * 1000, 3)
        knowledge.close()
        catalog.close()
        return {
            "lookups": n,
            "lookup_plain": _ms(plain),
            "lookup_with_coding_first_time": _ms(cold),
            "lookup_with_coding_cached": _ms(warm),
            "answers_p50_ms": timings,
            "knowledge_build_s": round(_knowledge_build_seconds(path), 2),
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


def main() -> None:
    """Print the figures."""
    result = run()
    for key in ("lookup_plain", "lookup_with_coding_first_time", "lookup_with_coding_cached"):
        figures = result[key]
        assert isinstance(figures, dict)
        print(f"{key:<32} p50 {figures['p50_ms']} ms  p95 {figures['p95_ms']} ms")
    answers = result["answers_p50_ms"]
    assert isinstance(answers, dict)
    for name, ms in answers.items():
        print(f"  /code {name:<40} p50 {ms} ms")
    print(f"knowledge tables in the build     {result['knowledge_build_s']} s")


if __name__ == "__main__":
    main()
