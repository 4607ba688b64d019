"""Search relevance and speed: our engine against two simple baselines.

Run: `python -m benchmarks.search_bench` (uses CODEBOT_CODES_DB or data/build/codes.sqlite,
building a temporary database when neither exists). Measures on both dev sets (v1
`search-dev.tsv`, 54 queries; v2 `search-dev-v2.tsv`, 112 queries in 10 categories from
`search-dev-v2.categories.tsv`; the shared copies under ../shared/eval/ when present, else
ours in benchmarks/data/; `CODEBOT_SEARCH_DEV` adds another file): recall@1/5/10, MRR
(per set and per category) and latency p50/p95 for

* `engine_cold`: bot.codes.search.SearchEngine, each dev query on a fresh engine's caches
  (only the lazy load done); `engine`: after `warm_up()`, as a server runs it;
* `fts5`: SQLite FTS5 over title, short title and inclusion terms, OR of the query words,
  ranked by bm25 (built in memory at bench time);
* `wratio`: rapidfuzz.process.extract with WRatio over every title (slow: timed on a subset
  when the full set would take too long).

Also: autocomplete p95 for 1-3 word prefixes and code prefixes, cold start of a fresh process
(open + first query) with its peak RSS, index build time and the index's size in the file.
Targets: recall@5 >= 0.98 (v1) and >= 0.95 (v2 style), MRR >= 0.85, p50 <= 2 ms, p95 <= 10 ms,
autocomplete p95 <= 5 ms,
cold start <= 1.5 s, RSS <= 400 MB.
"""

from __future__ import annotations

import gc
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
from bot.app import tune_gc_for_serving
from bot.codes.search import SearchEngine
from bot.codes.search_index import build_search_index
from bot.codes.vocabulary import load_vocabulary

ROOT = Path(__file__).resolve().parents[1]


def _dev_file(name: str) -> Path:
    """The shared dev file when the checkout sits beside shared/ (as here), else our copy."""
    shared = ROOT.parent / "shared" / "eval" / name
    return shared if shared.is_file() else ROOT / "benchmarks" / "data" / name


DEFAULT_DEV = _dev_file("search-dev.tsv")
DEV_V2 = _dev_file("search-dev-v2.tsv")
DEV_V2_CATEGORIES = _dev_file("search-dev-v2.categories.tsv")
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


def load_categories(path: Path) -> dict[str, str]:
    """query -> category, from a categories file (query TAB category)."""
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or "\t" not in line:
                continue
            query, category = line.split("\t", 1)
            out[query.strip()] = category.strip()
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


def _figures(ranks: Sequence[int | None]) -> dict[str, float]:
    n = max(len(ranks), 1)
    return {
        "queries": len(ranks),
        "recall@1": round(sum(1 for r in ranks if r is not None and r <= 1) / n, 3),
        "recall@5": round(sum(1 for r in ranks if r is not None and r <= 5) / n, 3),
        "recall@10": round(sum(1 for r in ranks if r is not None) / n, 3),
        "mrr": round(sum(1.0 / r for r in ranks if r is not None) / n, 3),
    }


def evaluate(
    dev: Sequence[tuple[str, list[str]]],
    ranker: Callable[[str], list[str]],
    categories: dict[str, str] | None = None,
) -> dict[str, Any]:
    """recall@1/5/10, MRR (over the top 10) and latency of one ranker on a dev set, also per
    category when `categories` (query -> category) is given."""
    ranks: list[int | None] = []
    latencies: list[float] = []
    misses: list[str] = []
    cpu: list[float] = []
    for query, answers in dev:
        started = time.perf_counter()
        cpu_started = time.thread_time()
        codes = ranker(query)
        cpu.append((time.thread_time() - cpu_started) * 1000)
        latencies.append((time.perf_counter() - started) * 1000)
        rank = next((i + 1 for i, c in enumerate(codes[:10]) if is_hit(c, answers)), None)
        ranks.append(rank)
        if rank is None or rank > 5:
            misses.append(query)
    out: dict[str, Any] = {
        **_figures(ranks),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        # CPU time of the query's thread: what one core spends, whatever else the (shared)
        # machine runs at the same time; wall time above includes waiting for the core.
        "cpu_p50_ms": round(percentile(cpu, 50), 2),
        "cpu_p95_ms": round(percentile(cpu, 95), 2),
        "misses": misses,
    }
    if categories:
        by_category: dict[str, list[int | None]] = {}
        for (query, _answers), rank in zip(dev, ranks, strict=True):
            by_category.setdefault(categories.get(query, "other"), []).append(rank)
        out["categories"] = {c: _figures(r) for c, r in sorted(by_category.items())}
    return out


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
    vocabulary = load_vocabulary(progress=lambda _line: None)
    vocab_seconds = time.perf_counter() - started
    build_search_index(mem, progress=lambda _line: None, vocabulary=vocabulary)
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
    return {
        "build_s": round(seconds, 2),
        "vocabulary_s": round(vocab_seconds, 2),
        "index_mb": round((size or 0) / 1e6, 1),
    }


# ---------------------------------------------------------------------- main


def dev_sets() -> list[tuple[str, list[tuple[str, list[str]]], dict[str, str]]]:
    """(name, queries, categories) of every dev set the bench runs."""
    sets = [
        ("v1", load_dev(DEFAULT_DEV), {}),
        ("v2", load_dev(DEV_V2), load_categories(DEV_V2_CATEGORIES)),
    ]
    extra = os.environ.get("CODEBOT_SEARCH_DEV")
    if extra:
        sets.append((Path(extra).stem, load_dev(Path(extra)), {}))
    return sets


def run() -> dict[str, Any]:
    """Run every measurement, print a table and return the figures."""
    db, tmp = codes_database()
    try:
        sets = dev_sets()
        every_query = [pair for _name, dev, _c in sets for pair in dev]
        results: dict[str, Any] = {"db": str(db), "dev_sets": [name for name, _, _ in sets]}

        engine = SearchEngine.open(db)
        started = time.perf_counter()
        engine.search("warm up")  # first query loads the lazy parts: report it apart
        results["engine_first_query_ms"] = round((time.perf_counter() - started) * 1000, 1)
        for name, dev, categories in sets:
            results[f"engine_cold/{name}"] = evaluate(
                dev, lambda q: [h.code for h in engine.search(q, limit=10)], categories
            )
        engine.close()
        # What a server sees: it calls warm_up() at start-up (decodes every posting list).
        engine = SearchEngine.open(db)
        started = time.perf_counter()
        engine.warm_up()
        thresholds = tune_gc_for_serving()  # as `open_service(warm=True)` does
        results["engine_warm_up_ms"] = round((time.perf_counter() - started) * 1000, 1)
        for name, dev, categories in sets:
            results[f"engine/{name}"] = evaluate(
                dev, lambda q: [h.code for h in engine.search(q, limit=10)], categories
            )

        ac_inputs = autocomplete_inputs(every_query)
        ac_ms: list[float] = []
        ac_cpu: list[float] = []
        for text in ac_inputs:
            t = time.perf_counter()
            c = time.thread_time()
            engine.autocomplete(text)
            ac_cpu.append((time.thread_time() - c) * 1000)
            ac_ms.append((time.perf_counter() - t) * 1000)
        results["autocomplete"] = {
            "inputs": len(ac_inputs),
            "p50_ms": round(percentile(ac_ms, 50), 2),
            "p95_ms": round(percentile(ac_ms, 95), 2),
            "cpu_p50_ms": round(percentile(ac_cpu, 50), 2),
            "cpu_p95_ms": round(percentile(ac_cpu, 95), 2),
        }
        engine.close()
        gc.unfreeze()
        gc.set_threshold(*thresholds)

        fts = fts5_ranker(db)
        for name, dev, categories in sets:
            results[f"fts5/{name}"] = evaluate(dev, fts, categories)

        wratio = wratio_ranker(db)
        t = time.perf_counter()
        wratio(every_query[0][0] if every_query else "x")
        per_query = time.perf_counter() - t
        dev = sets[0][1]
        subset = dev
        if per_query * len(dev) > WRATIO_BUDGET_S:
            subset = dev[:: max(1, int(per_query * len(dev) / WRATIO_BUDGET_S) + 1)]
        results["wratio/v1"] = evaluate(subset, wratio)

        results["cold_start"] = cold_start(db)
        results["index"] = index_build(db)
        _print(results)
        return results
    finally:
        if tmp is not None:
            tmp.cleanup()


def _row(name: str, r: dict[str, Any]) -> str:
    times = ""
    if "p50_ms" in r:
        times = (
            f" {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['cpu_p50_ms']:>7.2f}"
            f" {r['cpu_p95_ms']:>7.2f}"
        )
    return (
        f"{name:<27} {r['queries']:>7} {r['recall@1']:>6.3f} {r['recall@5']:>6.3f}"
        f" {r['recall@10']:>6.3f} {r['mrr']:>6.3f}{times}"
    )


def _print(results: dict[str, Any]) -> None:
    print(f"search benchmark on {results['db']}")
    print(
        f"{'ranker/set':<27} {'queries':>7} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6}"
        f" {'p50 ms':>7} {'p95 ms':>7} {'cpu p50':>7} {'cpu p95':>7}"
    )
    names = [k for k in results if "/" in k]
    for name in names:
        print(_row(name, results[name]))
    for name in names:
        categories = results[name].get("categories")
        if categories and name.startswith(("engine/", "fts5/")):
            print(f"per category, {name}:")
            for category, r in categories.items():
                print(_row("  " + category, r))
    ac = results["autocomplete"]
    print(
        f"autocomplete: {ac['inputs']} inputs, p50 {ac['p50_ms']} ms, p95 {ac['p95_ms']} ms"
        f" (CPU p50 {ac['cpu_p50_ms']} ms, p95 {ac['cpu_p95_ms']} ms)"
    )
    cs = results["cold_start"]
    print(
        f"cold start: {cs['process_s']} s process, {cs['import_open_first_query_s']} s"
        f" import+open+first query, peak RSS {cs['peak_rss_mb']} MB"
        f" (first query in this process {results['engine_first_query_ms']} ms,"
        f" warm_up {results['engine_warm_up_ms']} ms)"
    )
    ix = results["index"]
    print(
        f"index: built in {ix['build_s']} s (reading the official vocabulary sources"
        f" {ix['vocabulary_s']} s of it), {ix['index_mb']} MB in the database"
    )
    for name in names:
        if name.startswith("engine/") and results[name]["misses"]:
            print(f"engine misses on {name} (not in top 5):", "; ".join(results[name]["misses"]))


if __name__ == "__main__":
    run()
