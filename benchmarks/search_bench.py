"""Search relevance and speed: our engine against two simple baselines.

Run: `python -m benchmarks.search_bench` (uses CODEBOT_CODES_DB or data/build/codes.sqlite,
building a temporary database when neither exists). Measures on the dev set
(`CODEBOT_SEARCH_DEV`, default ../shared/eval/search-dev.tsv): recall@5, MRR and latency
p50/p95 for

* `engine_cold`: bot.codes.search.SearchEngine, each dev query on a fresh engine's caches
  (only the lazy load done); `engine`: after `warm_up()`, as a server runs it;
* `fts5`: SQLite FTS5 over title, short title and inclusion terms, OR of the query words,
  ranked by bm25 (built in memory at bench time);
* `wratio`: rapidfuzz.process.extract with WRatio over every title (slow: timed on a subset
  when the full set would take too long).

Also: autocomplete p95 for 1-3 word prefixes and code prefixes, cold start of a fresh process
(open + first query) with its peak RSS, index build time and the index's size in the file.
Targets: recall@5 >= 0.95, p50 <= 2 ms, p95 <= 10 ms, autocomplete p95 <= 20 ms,
cold start <= 1.5 s, RSS <= 400 MB.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import codes_database, percentile
from bot.codes.search import SearchEngine
from bot.codes.search_index import build_search_index

ROOT = Path(__file__).resolve().parents[1]
# The shared dev set when the checkout sits beside shared/ (as in CI), else our copy of it.
_SHARED_DEV = ROOT.parent / "shared" / "eval" / "search-dev.tsv"
DEFAULT_DEV = (
    _SHARED_DEV if _SHARED_DEV.is_file() else ROOT / "benchmarks" / "data" / "search-dev.tsv"
)
WRATIO_BUDGET_S = 60.0  # the naive baseline gets at most this long
CODE_PREFIXES = ["E11", "e11.6", "0DT", "0dtj", "A04", "S72.0", "I1", "J44", "K08", "G0"]


def load_dev(path: Path) -> list[tuple[str, list[str]]]:
    """The dev set: (query, acceptable answers) pairs; answers may end in '*' (a prefix)."""
    out: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or "\t" not in line:
            continue
        query, answers = line.split("\t", 1)
        out.append((query.strip(), [a.strip() for a in answers.split(",") if a.strip()]))
    return out


def is_hit(code: str, answers: Sequence[str]) -> bool:
    """True when `code` (display form) is one of the acceptable answers."""
    for answer in answers:
        if answer.endswith("*"):
            if code.startswith(answer[:-1]):
                return True
        elif code == answer:
            return True
    return False


def evaluate(
    dev: Sequence[tuple[str, list[str]]], ranker: Callable[[str], list[str]]
) -> dict[str, Any]:
    """recall@5, MRR (over the top 10) and latency of one ranker on the dev set."""
    hits = 0
    rr = 0.0
    latencies: list[float] = []
    misses: list[str] = []
    for query, answers in dev:
        started = time.perf_counter()
        codes = ranker(query)
        latencies.append((time.perf_counter() - started) * 1000)
        rank = next((i + 1 for i, c in enumerate(codes[:10]) if is_hit(c, answers)), None)
        if rank is not None:
            rr += 1.0 / rank
        if rank is not None and rank <= 5:
            hits += 1
        else:
            misses.append(query)
    n = max(len(dev), 1)
    return {
        "queries": len(dev),
        "recall@5": round(hits / n, 3),
        "mrr": round(rr / n, 3),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "misses": misses,
    }


# ---------------------------------------------------------------------- baselines


def fts5_ranker(db: Path) -> Callable[[str], list[str]]:
    """SQLite FTS5 bm25 over title, short title and inclusion terms (OR of the words)."""
    mem = sqlite3.connect(":memory:")
    mem.execute(
        "CREATE VIRTUAL TABLE fts USING fts5(code UNINDEXED, title, short_title, search_terms)"
    )
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    mem.executemany(
        "INSERT INTO fts (code, title, short_title, search_terms) VALUES (?, ?, ?, ?)",
        src.execute("SELECT code, title, short_title, search_terms FROM codes"),
    )
    src.close()
    mem.commit()

    def rank(query: str) -> list[str]:
        words = re.findall(r"[0-9A-Za-z]+", query)
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        rows = mem.execute(
            "SELECT code FROM fts WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT 10", (match,)
        )
        return [r[0] for r in rows]

    return rank


def wratio_ranker(db: Path) -> Callable[[str], list[str]]:
    """Naive rapidfuzz WRatio over every title."""
    from rapidfuzz import fuzz, process, utils

    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = src.execute("SELECT code, title FROM codes").fetchall()
    src.close()
    codes = [r[0] for r in rows]
    titles = [r[1] for r in rows]

    def rank(query: str) -> list[str]:
        found = process.extract(
            query, titles, scorer=fuzz.WRatio, processor=utils.default_process, limit=10
        )
        return [codes[i] for _, _, i in found]

    return rank


# ---------------------------------------------------------------------- extras


def autocomplete_inputs(dev: Sequence[tuple[str, list[str]]]) -> list[str]:
    """What a user has typed so far: 1-3 words with the last one cut short, and code prefixes."""
    inputs: list[str] = list(CODE_PREFIXES)
    for query, _ in dev:
        words = query.split()
        for n in (1, 2, 3):
            if len(words) >= n:
                head = words[: n - 1]
                last = words[n - 1]
                inputs.append(" ".join([*head, last[: max(2, min(len(last), 4))]]))
    return inputs


def cold_start(db: Path) -> dict[str, Any]:
    """Wall time and peak RSS of a fresh interpreter that opens the engine and searches."""
    code = (
        "import resource, sys, time; t = time.perf_counter();"
        "from bot.codes.search import SearchEngine;"
        "e = SearchEngine.open(sys.argv[1]); e.search('diabtes with neuropathy');"
        "e.autocomplete('diab typ');"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')];"
        "kb = int(hwm[0].split()[1]) if hwm else"
        " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "print(time.perf_counter() - t, kb)"
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    wall = time.perf_counter() - started
    inner, rss_kb = proc.stdout.split()
    return {
        "process_s": round(wall, 3),
        "import_open_first_query_s": round(float(inner), 3),
        "peak_rss_mb": round(int(rss_kb) / 1024, 1),
    }


def index_build(db: Path) -> dict[str, Any]:
    """Rebuild the index in an in-memory copy of the database; size of the index tables."""
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    mem = sqlite3.connect(":memory:")
    src.backup(mem)
    src.close()
    started = time.perf_counter()
    build_search_index(mem, progress=lambda _line: None)
    mem.commit()
    seconds = time.perf_counter() - started
    try:
        size = mem.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'search_%'"
            " OR name LIKE 'sqlite_autoindex_search_%'"
        ).fetchone()[0]
    except sqlite3.Error:  # dbstat is optional in SQLite builds: count the payload instead
        size = (
            mem.execute(
                "SELECT SUM(LENGTH(token) + LENGTH(title_ids) + LENGTH(other_ids) + 8)"
                " FROM search_postings"
            ).fetchone()[0]
            + mem.execute("SELECT SUM(LENGTH(value)) FROM search_meta").fetchone()[0]
        )
    mem.close()
    return {"build_s": round(seconds, 2), "index_mb": round((size or 0) / 1e6, 1)}


# ---------------------------------------------------------------------- main


def run() -> dict[str, Any]:
    """Run every measurement, print a table and return the figures."""
    db, tmp = codes_database()
    try:
        dev_path = Path(os.environ.get("CODEBOT_SEARCH_DEV", DEFAULT_DEV))
        dev = load_dev(dev_path)
        results: dict[str, Any] = {"db": str(db), "dev_set": str(dev_path)}

        engine = SearchEngine.open(db)
        started = time.perf_counter()
        engine.search("warm up")  # first query loads the lazy parts: report it apart
        results["engine_first_query_ms"] = round((time.perf_counter() - started) * 1000, 1)
        results["engine_cold"] = evaluate(
            dev, lambda q: [h.code for h in engine.search(q, limit=10)]
        )
        engine.close()
        # What a server sees: it calls warm_up() at start-up (decodes the biggest lists).
        engine = SearchEngine.open(db)
        started = time.perf_counter()
        engine.warm_up()
        results["engine_warm_up_ms"] = round((time.perf_counter() - started) * 1000, 1)
        results["engine"] = evaluate(dev, lambda q: [h.code for h in engine.search(q, limit=10)])

        ac_inputs = autocomplete_inputs(dev)
        ac_ms: list[float] = []
        for text in ac_inputs:
            t = time.perf_counter()
            engine.autocomplete(text)
            ac_ms.append((time.perf_counter() - t) * 1000)
        results["autocomplete"] = {
            "inputs": len(ac_inputs),
            "p50_ms": round(percentile(ac_ms, 50), 2),
            "p95_ms": round(percentile(ac_ms, 95), 2),
        }
        engine.close()

        results["fts5"] = evaluate(dev, fts5_ranker(db))

        wratio = wratio_ranker(db)
        t = time.perf_counter()
        wratio(dev[0][0] if dev else "x")
        per_query = time.perf_counter() - t
        subset = dev
        if per_query * len(dev) > WRATIO_BUDGET_S:
            subset = dev[:: max(1, int(per_query * len(dev) / WRATIO_BUDGET_S) + 1)]
        results["wratio"] = evaluate(subset, wratio)

        results["cold_start"] = cold_start(db)
        results["index"] = index_build(db)
        _print(results)
        return results
    finally:
        if tmp is not None:
            tmp.cleanup()


def _print(results: dict[str, Any]) -> None:
    print(f"search benchmark on {results['db']}")
    print(f"{'ranker':<11} {'queries':>7} {'recall@5':>9} {'MRR':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for name in ("engine_cold", "engine", "fts5", "wratio"):
        r = results[name]
        print(
            f"{name:<11} {r['queries']:>7} {r['recall@5']:>9.3f} {r['mrr']:>6.3f}"
            f" {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f}"
        )
    ac = results["autocomplete"]
    print(f"autocomplete: {ac['inputs']} inputs, p50 {ac['p50_ms']} ms, p95 {ac['p95_ms']} ms")
    cs = results["cold_start"]
    print(
        f"cold start: {cs['process_s']} s process, {cs['import_open_first_query_s']} s"
        f" import+open+first query, peak RSS {cs['peak_rss_mb']} MB"
        f" (first query in this process {results['engine_first_query_ms']} ms,"
        f" warm_up {results['engine_warm_up_ms']} ms)"
    )
    ix = results["index"]
    print(f"index: built in {ix['build_s']} s, {ix['index_mb']} MB in the database")
    if results["engine"]["misses"]:
        print("engine misses (not in top 5):", "; ".join(results["engine"]["misses"]))


if __name__ == "__main__":
    run()
