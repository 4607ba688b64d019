"""Build the code database: public sources -> one SQLite file (codes + search index).

The build is atomic: everything is written to `<output>.tmp-<pid>` and moved over the old
file with `os.replace` only when complete, so a failed build (bad source file, crash, Ctrl-C)
leaves the previous database untouched and a running bot never sees a half-built file.
Imported CPT rows (licensed, never in git) are copied from the previous database into the
new one, so `codebot data build` does not silently drop an admin's CPT import.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.codes.catalog import CodeSetStatus, read_code_sets
from bot.codes.releases import RELEASES_DDL, write_history
from bot.codes.schema import CODES_DDL, SCHEMA_VERSION
from bot.codes.sources import CodeRow, SourceData

Progress = Callable[[str], None]
SourceLoader = Callable[[], SourceData]

_INSERT_CODE = (
    "INSERT INTO codes (id, system, code, key, kind, title, short_title, billable, status,"
    " parent_id, sort_order, search_terms, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_SET = (
    "INSERT OR REPLACE INTO code_sets (system, label, release, source, counts) VALUES (?,?,?,?,?)"
)
# Systems that come from an import, not from the build's sources: kept across rebuilds.
PRESERVED_SYSTEMS = ("cpt",)


@dataclass(frozen=True)
class BuildReport:
    """What a build produced: where, how long, and each code set's counts."""

    output: Path
    seconds: float
    code_sets: tuple[CodeSetStatus, ...]
    rows: int
    preserved: dict[str, int]
    search_index: bool


def default_sources() -> list[tuple[str, SourceLoader]]:
    """The public code sets, as (name, loader) pairs, in the order they are built."""
    # Imported here so that `database_status` (the CLI's `data status`) stays cheap.
    from bot.codes.sources import releases_held

    return [
        ("ICD-10-CM", releases_held.icd10cm),
        ("ICD-10-PCS", releases_held.icd10pcs),
        ("HCPCS Level II", releases_held.hcpcs),
    ]


def _dumps(value: dict[str, Any]) -> str:
    """Compact JSON for the details column ('{}' for nothing)."""
    if not value:
        return "{}"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _split_ddl() -> tuple[list[str], list[str]]:
    """The schema's statements split into tables and indexes (indexes are built last, faster)."""
    statements = [s.strip() for s in CODES_DDL.split(";") if s.strip()]
    tables = [s for s in statements if not s.upper().startswith("CREATE INDEX")]
    indexes = [s for s in statements if s.upper().startswith("CREATE INDEX")]
    return tables, indexes


class _Writer:
    """Inserts rows with explicit ids so parents resolve without a lookup query."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.next_id = 1
        self.total = 0

    def insert(self, system: str, rows: Iterable[CodeRow]) -> int:
        """Insert one system's rows (parents first); returns how many were written."""
        ids: dict[str, int] = {}
        batch: list[tuple[object, ...]] = []
        for order, row in enumerate(rows):
            if row.system != system:
                raise ValueError(f"row {row.code} of {row.system} inside {system}")
            parent_id = None
            if row.parent is not None:
                parent_id = ids.get(row.parent)
                if parent_id is None:
                    raise ValueError(f"{system} {row.code}: parent {row.parent} not seen before it")
            row_id = self.next_id
            self.next_id += 1
            ids[row.code] = row_id
            batch.append(
                (
                    row_id,
                    system,
                    row.code,
                    row.key,
                    row.kind,
                    row.title,
                    row.short_title,
                    int(row.billable),
                    row.status,
                    parent_id,
                    order,
                    row.search_terms,
                    _dumps(row.details),
                )
            )
        self.conn.executemany(_INSERT_CODE, batch)
        self.total += len(batch)
        return len(batch)


def _preserved_rows(old: Path, system: str) -> tuple[list[CodeRow], tuple[Any, ...] | None]:
    """Rows and the code_sets row of `system` in an existing database (empty if none)."""
    if not old.exists():
        return [], None
    try:
        conn = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
    except sqlite3.Error:
        return [], None
    try:
        cur = conn.execute(
            "SELECT c.code, c.key, c.kind, c.title, c.short_title, c.billable, c.status,"
            " p.code, c.search_terms, c.details FROM codes c"
            " LEFT JOIN codes p ON p.id = c.parent_id"
            " WHERE c.system = ? ORDER BY c.sort_order, c.id",
            (system,),
        )
        rows = [
            CodeRow(
                system=system,
                code=code,
                key=key,
                kind=kind,
                title=title,
                short_title=short_title,
                billable=bool(billable),
                status=status,
                parent=parent,
                search_terms=search_terms,
                details=json.loads(details) if details else {},
            )
            for (
                code,
                key,
                kind,
                title,
                short_title,
                billable,
                status,
                parent,
                search_terms,
                details,
            ) in cur
        ]
        set_row = conn.execute(
            "SELECT system, label, release, source, counts FROM code_sets WHERE system = ?",
            (system,),
        ).fetchone()
        return rows, set_row
    except sqlite3.Error:
        # An old file from another schema or a corrupt one: nothing we can safely carry over.
        return [], None
    finally:
        conn.close()


def build_code_db(
    output: Path,
    *,
    progress: Progress = print,
    search_index: bool = True,
    sources: Sequence[tuple[str, SourceLoader]] | None = None,
    knowledge: bool | None = None,
    knowledge_writers: list[tuple[str, Any]] | None = None,
) -> BuildReport:
    """Build the code database at `output` from the public sources, atomically.

    `progress` receives one line per step. With `search_index` (the default; tests of the
    code sets alone skip it), `bot.codes.search_index` adds the search tables.
    `sources` replaces the default loaders (tests use it to inject a failing source).
    `knowledge` adds the coding-knowledge tables (`bot.codes.knowledge_build`); by default
    only with the default sources (a test's tiny code set has no use for them);
    `knowledge_writers` replaces its default sources (tests inject a missing one).
    CPT rows of an existing database at `output` are carried over.
    """
    started = time.perf_counter()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f"{output.name}.tmp-{os.getpid()}")
    for leftover in (tmp, Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)
    loaders = list(sources) if sources is not None else default_sources()
    conn = sqlite3.connect(tmp)
    # The readers allocate ~200k small objects that all live until the end of the build; the
    # cyclic GC would rescan them again and again (half the build time) for nothing.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # Nothing reads the temp file until it is complete, so durability per statement is
        # pointless; the final commit + os.replace is the durability point.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        tables, indexes = _split_ddl()
        for statement in tables:
            conn.execute(statement)
        conn.executescript(RELEASES_DDL)
        writer = _Writer(conn)
        for name, loader in loaders:
            step = time.perf_counter()
            progress(f"reading {name} ...")
            data = loader()
            written = writer.insert(data.system, data.rows)
            write_history(conn, data.releases, data.spans, data.changes)
            conn.execute(
                _INSERT_SET,
                (data.system, data.label, data.release, data.source, json.dumps(data.counts)),
            )
            counts = ", ".join(f"{k} {v:,}" for k, v in data.counts.items())
            progress(
                f"  {data.label} {data.release}: {written:,} rows ({counts})"
                f" in {time.perf_counter() - step:.1f}s"
            )
        preserved: dict[str, int] = {}
        for system in PRESERVED_SYSTEMS:
            rows, set_row = _preserved_rows(output, system)
            if rows and set_row is not None:
                preserved[system] = writer.insert(system, rows)
                conn.execute(_INSERT_SET, set_row)
                progress(f"  kept {len(rows):,} imported {system} rows from the previous database")
        if knowledge if knowledge is not None else sources is None:
            from bot.codes.knowledge_build import build_knowledge

            build_knowledge(conn, progress, knowledge_writers)
        for statement in indexes:
            conn.execute(statement)
        built_at = datetime.now(UTC).replace(microsecond=0).isoformat()
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("schema_version", str(SCHEMA_VERSION)), ("built_at", built_at)],
        )
        conn.commit()
        if search_index:
            _build_search_index(conn, progress)
        conn.execute("ANALYZE")
        conn.commit()
        code_sets = tuple(read_code_sets(conn))
        conn.close()
        os.replace(tmp, output)
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if gc_was_enabled:
            gc.enable()
    seconds = time.perf_counter() - started
    progress(f"built {output} ({writer.total:,} rows) in {seconds:.1f}s")
    return BuildReport(
        output=output,
        seconds=seconds,
        code_sets=code_sets,
        rows=writer.total,
        preserved=preserved,
        search_index=search_index,
    )


def _build_search_index(conn: sqlite3.Connection, progress: Progress) -> None:
    """Index the finished codes table for word search, in the same file."""
    from bot.codes.search_index import build_search_index

    step = time.perf_counter()
    progress("building search index ...")
    build_search_index(conn, progress)
    conn.commit()
    progress(f"  search index in {time.perf_counter() - step:.1f}s")


def database_status(path: Path) -> list[CodeSetStatus]:
    """Each code set in the database at `path` (empty list when there is no database)."""
    path = Path(path)
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return read_code_sets(conn)
    except sqlite3.Error:
        return []
    finally:
        conn.close()
