"""What hostile input costs (issue 12, item 7): the search engine's worst queries, and the
cost of refusing them for a user with no lookups left.

Run: `python -m benchmarks.hostile_bench`. Queries are generated (seeded) the way the
hardening review fuzzed them: 1-80 words from the synonym vocabulary with one typo per word,
plus repeated words and random letters. Targets: a refused search by a user with nothing left
costs well under 5 ms (no search work, one SQL statement), whatever the query.
"""

from __future__ import annotations

import asyncio
import random
import string
import tempfile
import time
from pathlib import Path

from benchmarks.common import codes_database, percentile
from bot.app import open_service
from bot.codes.search import SearchEngine
from bot.config import Settings
from bot.model import ReplyKind, Request, UserRef

ROOT = Path(__file__).resolve().parents[1]


def hostile_queries(n_per_length: int = 12, seed: int = 7) -> list[str]:
    """Typo-heavy many-word queries, repeated words and random letters (≤ 500 characters)."""
    rng = random.Random(seed)
    text = (ROOT / "data" / "synonyms.tsv").read_text(encoding="utf-8")
    words = [w for w in text.replace("\t", " ").split() if w.isalpha() and len(w) > 3][:3000]

    def typo(word: str) -> str:
        i = rng.randrange(len(word))
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]

    queries = [
        " ".join(typo(rng.choice(words)) for _ in range(length))[:500]
        for length in (1, 2, 5, 10, 20, 40, 80)
        for _ in range(n_per_length)
    ]
    queries += ["diabtes mellitis " * 28, "a " * 240, "x" * 500]
    queries += [
        " ".join(
            "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 8))) for _ in range(80)
        )
    ]
    return queries


def _ms(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 50) * 1000, 2),
        "p95_ms": round(percentile(samples, 95) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


async def _refusals(path: Path, queries: list[str]) -> list[float]:
    """Time each query as a search by a guest whose one lookup is spent."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(codes_db=path, database_url=f"sqlite:///{scratch}/state.sqlite")
        async with open_service(settings) as service:
            guest = UserRef("console", "bench", "guest", "Guest")
            await service.handle(Request(user=guest, text="E11.9"))
            first = await service.handle(Request(user=guest, text=queries[0]))
            assert first.kind is ReplyKind.EXHAUSTED, first
            samples = []
            for query in queries:
                started = time.perf_counter()
                reply = await service.handle(Request(user=guest, text=query))
                samples.append(time.perf_counter() - started)
                assert reply.kind in (ReplyKind.EXHAUSTED, ReplyKind.INVALID), reply.kind
            return samples


def run() -> dict[str, object]:
    """Worst-case search times, and refusal times for a user with nothing left."""
    path, tmp = codes_database()
    try:
        queries = hostile_queries()
        engine = SearchEngine.open(path)
        engine.warm_up()
        searches = []
        for query in queries:
            started = time.perf_counter()
            engine.search(query, limit=10)
            searches.append(time.perf_counter() - started)
        engine.close()
        refusals = asyncio.run(_refusals(path, queries))
        return {"queries": len(queries), "search": _ms(searches), "refused": _ms(refusals)}
    finally:
        if tmp is not None:
            tmp.cleanup()


def main() -> None:
    """Print the figures."""
    result = run()
    print(f"hostile queries  {result['queries']}")
    for name, label in (("search", "engine search"), ("refused", "refused (no lookups left)")):
        figures = result[name]
        assert isinstance(figures, dict)
        print(
            f"{label:<27} p50 {figures['p50_ms']} ms  p95 {figures['p95_ms']} ms"
            f"  max {figures['max_ms']} ms"
        )


if __name__ == "__main__":
    main()
