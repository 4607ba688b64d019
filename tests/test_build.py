"""The code database builder: counts from the real sources, atomicity, CPT carried over."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.codes.build import build_code_db, database_status
from bot.codes.catalog import CodeCatalog
from bot.codes.cpt_import import import_cpt
from bot.codes.sources import DATA_DIR, CodeRow, SourceData, icd10cm
from bot.codes.sources.icd10cm import xml_path

# ICD-10-CM billable codes in the April 1, 2026 tabular XML (FY2026): 74,795 leaves and
# generated 7th-character codes, minus the 76 S06 codes a note rules out (data/README.md).
ICD10CM_FY2026_BILLABLE = 74_719


def scalar(db: Path, sql: str, *args: object) -> int:
    """One integer from the database."""
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def test_icd10cm_counts(codes_db_path: Path) -> None:
    """The codes table holds FY2027 (in force): its billable count is the order file's."""
    with gzip.open(DATA_DIR / "icd10cm" / "icd10cm_order_2027.txt.gz", "rt") as handle:
        fy2027_billable = sum(1 for line in handle if line[14] == "1")
    billable = "SELECT count(*) FROM codes WHERE system = 'icd10cm' AND billable = 1"
    assert scalar(codes_db_path, billable) == fy2027_billable
    status = {s.system: s for s in database_status(codes_db_path)}
    assert status["icd10cm"].counts["billable"] == fy2027_billable
    assert status["icd10cm"].counts["chapters"] == 22
    fy2026 = "SELECT counts FROM releases WHERE system = 'icd10cm' AND release = 'FY2026'"
    with sqlite3.connect(codes_db_path) as conn:
        counts = json.loads(conn.execute(fy2026).fetchone()[0])
    assert counts["billable"] == ICD10CM_FY2026_BILLABLE


def test_icd10cm_matches_the_packaged_code_list() -> None:
    """Our 7th-character expansion of the FY2026 XML yields exactly the code list shipped
    with it (the FY2026 release held beside FY2027)."""
    listed = {
        line.strip().replace(".", "")
        for line in (xml_path().parent / "code-list-April-2026.txt").read_text().splitlines()
    }
    listed = {c for c in listed if c and not c.isdigit() and "-" not in c}
    ours = {
        row.key for row in icd10cm.load().rows if row.kind in ("category", "subcategory", "code")
    }
    assert ours == listed


def count(db: Path, where: str) -> int:
    """How many codes rows match a WHERE clause."""
    return scalar(db, f"SELECT count(*) FROM codes WHERE {where}")


def test_icd10pcs_counts(codes_db_path: Path) -> None:
    """FY2026 as the order file has it; FY2027 (the codes table) = its release's count."""
    with gzip.open(DATA_DIR / "icd10pcs" / "icd10pcs_order_2026.txt.gz", "rt") as handle:
        fy2026 = sum(1 for line in handle if line[14] == "1")
    with sqlite3.connect(codes_db_path) as conn:
        counts = {
            release: json.loads(raw)
            for release, raw in conn.execute(
                "SELECT release, counts FROM releases WHERE system = 'icd10pcs'"
            )
        }
    assert counts["FY2026"]["billable"] == fy2026 == 79_115
    active = "system = 'icd10pcs' AND kind = 'code' AND status = 'active'"
    assert count(codes_db_path, active) == counts["FY2027"]["billable"]
    # the FY2026 tables, plus the tables FY2027 codes need that FY2026 did not have
    assert count(codes_db_path, "system = 'icd10pcs' AND kind = 'table'") >= 914
    status = {s.system: s for s in database_status(codes_db_path)}
    assert status["icd10pcs"].counts["sections"] == 17


def test_hcpcs_counts(codes_db_path: Path) -> None:
    assert count(codes_db_path, "system = 'hcpcs' AND kind = 'code'") == 8_623
    assert count(codes_db_path, "system = 'hcpcs' AND kind = 'modifier'") == 383
    terminated = "system = 'hcpcs' AND kind = 'code' AND status = 'terminated'"
    assert count(codes_db_path, terminated) == 1_300
    # No CDT (dental D-codes) in the public HCPCS file.
    assert count(codes_db_path, "system = 'hcpcs' AND key LIKE 'D____'") == 0


def test_meta(codes_db_path: Path) -> None:
    with sqlite3.connect(codes_db_path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == "1"
    assert meta["built_at"]


# ---------------------------------------------------------------- small synthetic builds


def tiny_source(title: str = "Synthetic category") -> SourceData:
    """A two-row ICD-10-CM-like source, so atomicity tests build in milliseconds."""
    rows = [
        CodeRow("icd10cm", "1", "CHAPTER1", "chapter", "Synthetic chapter"),
        CodeRow("icd10cm", "A00", "A00", "category", title, parent="1"),
        CodeRow("icd10cm", "A00.0", "A000", "code", "Synthetic code", billable=True, parent="A00"),
    ]
    return SourceData("icd10cm", "ICD-10-CM", "TEST", "synthetic", rows, {"codes": 2})


def loaders(*sources: Callable[[], SourceData]) -> list[tuple[str, Callable[[], SourceData]]]:
    """(name, loader) pairs for build_code_db(sources=...)."""
    return [(f"source {i}", source) for i, source in enumerate(sources)]


def failing_source() -> SourceData:
    """A source that breaks halfway through a build."""
    raise RuntimeError("synthetic source failure")


def quiet(_line: str) -> None:
    """Progress sink for tests."""


def test_failed_build_leaves_previous_database_intact(tmp_path: Path) -> None:
    output = tmp_path / "codes.sqlite"
    build_code_db(output, progress=quiet, search_index=False, sources=loaders(tiny_source))
    before = output.read_bytes()
    with pytest.raises(RuntimeError, match="synthetic source failure"):
        build_code_db(
            output,
            progress=quiet,
            search_index=False,
            sources=loaders(lambda: tiny_source("Changed"), failing_source),
        )
    assert output.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.sqlite"]  # no temp file left
    card = CodeCatalog.open(output).lookup("A00")[0]
    assert card.title == "Synthetic category"


def test_build_reports_progress_and_counts(tmp_path: Path) -> None:
    lines: list[str] = []
    report = build_code_db(
        tmp_path / "db.sqlite",
        progress=lines.append,
        search_index=False,
        sources=loaders(tiny_source),
    )
    assert report.rows == 3 and report.code_sets[0].system == "icd10cm"
    assert any("reading" in line for line in lines) and any("built" in line for line in lines)


def test_rebuild_keeps_imported_cpt(tmp_path: Path) -> None:
    output = tmp_path / "codes.sqlite"
    build_code_db(output, progress=quiet, search_index=False, sources=loaders(tiny_source))
    cpt = tmp_path / "cpt.tsv"
    cpt.write_text(
        "99213\tSYNTHETIC TEST DESCRIPTOR ALPHA\n70450\tSYNTHETIC TEST DESCRIPTOR BETA\n"
    )
    import_cpt(output, cpt, progress=quiet)
    report = build_code_db(
        output,
        progress=quiet,
        search_index=False,
        sources=loaders(lambda: tiny_source("Rebuilt")),
    )
    assert report.preserved == {"cpt": 4}  # two codes and their two range headers
    catalog = CodeCatalog.open(output)
    assert catalog.has_cpt()
    card = catalog.lookup("70450")[0]
    assert card.title == "SYNTHETIC TEST DESCRIPTOR BETA"
    assert [p.title for p in card.parents] == ["Radiology"]
    assert catalog.lookup("A00")[0].title == "Rebuilt"


def test_database_status_without_database(tmp_path: Path) -> None:
    assert database_status(tmp_path / "missing.sqlite") == []
