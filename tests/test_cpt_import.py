"""CPT import from licensed files (synthetic descriptors only) and CPT section ranges."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.codes.build import build_code_db
from bot.codes.catalog import CodeCatalog
from bot.codes.cpt_import import CptImportError, import_cpt, parse_cpt_file
from bot.codes.cpt_ranges import section_for
from bot.codes.sources import CodeRow, SourceData
from bot.model import CodeSystem


def quiet(_line: str) -> None:
    """Progress sink for tests."""


@pytest.fixture
def small_db(tmp_path: Path) -> Path:
    """A tiny code database (one synthetic ICD-10-CM code) to import into."""
    rows = [
        CodeRow("icd10cm", "1", "CHAPTER1", "chapter", "Synthetic chapter"),
        CodeRow("icd10cm", "A00", "A00", "category", "Synthetic", billable=True, parent="1"),
    ]
    source = SourceData("icd10cm", "ICD-10-CM", "TEST", "synthetic", rows, {"codes": 1})
    output = tmp_path / "codes.sqlite"
    build_code_db(output, progress=quiet, search_index=False, sources=[("tiny", lambda: source)])
    return output


@pytest.mark.parametrize(
    ("code", "section", "label"),
    [
        ("99213", "Evaluation and Management", "99202–99499"),
        ("00100", "Anesthesia", "00100–01999"),
        ("27447", "Surgery", "10004–69990"),
        ("70450", "Radiology", "70010–79999"),
        ("80053", "Pathology and Laboratory", "80047–89398"),
        ("90471", "Medicine", "90281–99199"),
        ("99500", "Medicine", "99500–99607"),
        ("1234F", "Category II: Performance measurement", "0001F–9999F"),
        ("0042T", "Category III: Emerging technology", "0001T–0999T"),
        ("0001u", "Proprietary Laboratory Analyses (PLA)", "0001U–9999U"),
    ],
)
def test_section_for(code: str, section: str, label: str) -> None:
    assert section_for(code) == (section, label)


def test_section_for_rejects_non_cpt() -> None:
    with pytest.raises(ValueError):
        section_for("A0425")
    assert section_for("99999")[1] == ""  # CPT-shaped but in no published range


def test_import_tsv_with_header_and_rejects(small_db: Path, tmp_path: Path) -> None:
    file = tmp_path / "cpt.tsv"
    file.write_text(
        "Code\tDescription\n"
        "99213\tSYNTHETIC TEST DESCRIPTOR ALPHA\n"
        "\n"
        "7045\tSYNTHETIC TEST DESCRIPTOR BAD CODE\n"
        "70450\t\n"
        "0042t\tSYNTHETIC TEST DESCRIPTOR GAMMA\n"
        "99213\tSYNTHETIC TEST DESCRIPTOR DUPLICATE\n"
        "A0425\tSYNTHETIC TEST DESCRIPTOR HCPCS\n"
    )
    report = import_cpt(small_db, file, progress=quiet)
    assert report.imported == 2 and report.replaced == 0
    assert [line for line, _ in report.rejected] == [4, 5, 7, 8]
    assert "duplicate of line 2" in report.rejected[2][1]
    catalog = CodeCatalog.open(small_db)
    assert catalog.has_cpt()
    card = catalog.lookup("99213")[0]
    assert card.system is CodeSystem.CPT and card.billable
    assert card.title == "SYNTHETIC TEST DESCRIPTOR ALPHA"
    assert card.parents[0].title == "Evaluation and Management"
    assert catalog.lookup("0042T")[0].code == "0042T"
    assert next(s for s in catalog.releases() if s.system == "cpt").release.startswith("cpt.tsv")


def test_import_csv_without_header_quoted_commas(small_db: Path, tmp_path: Path) -> None:
    file = tmp_path / "cpt.csv"
    file.write_text(
        '99213,"SYNTHETIC TEST DESCRIPTOR ALPHA, WITH COMMA"\r\n'
        "70450,SYNTHETIC TEST DESCRIPTOR BETA\r\n"
        "junk line without a code\r\n"
    )
    report = import_cpt(small_db, file, progress=quiet)
    assert report.imported == 2
    assert report.rejected == [(3, "not a CPT code: 'JUNK LINE WITHOUT A '")]
    title = CodeCatalog.open(small_db).lookup("99213")[0].title
    assert title == "SYNTHETIC TEST DESCRIPTOR ALPHA, WITH COMMA"


def test_import_pprrvu_layout(small_db: Path, tmp_path: Path) -> None:
    file = tmp_path / "PPRRVU26_JAN.csv"
    file.write_text(
        "SYNTHETIC RVU FILE,,,,\n"
        "Title line two,,,,\n"
        "HCPCS,MOD,DESCRIPTION,CODE,WORK RVU\n"
        ",,,STATUS,\n"
        "99213,,SYNTHETIC TEST DESCRIPTOR ALPHA,A,1.30\n"
        "70450,,SYNTHETIC TEST DESCRIPTOR BETA,A,0.85\n"
        "70450,26,SYNTHETIC TEST DESCRIPTOR BETA,A,0.85\n"
        "70450,TC,SYNTHETIC TEST DESCRIPTOR BETA,A,0.00\n"
        "G0008,,SYNTHETIC TEST DESCRIPTOR LEVEL II,A,0.00\n"
        "1234F,,SYNTHETIC TEST DESCRIPTOR DELTA,M,0.00\n"
        "80053,,,A,0.00\n"
    )
    codes, rejected, skipped, layout = parse_cpt_file(file)
    assert layout == "CMS PPRRVU"
    assert sorted(codes) == ["1234F", "70450", "99213"]
    assert rejected == [(11, "80053: no descriptor")]
    assert skipped == 4  # the sub-header row, two modifier rows, one Level II row
    report = import_cpt(small_db, file, progress=quiet)
    assert report.imported == 3


def test_reimport_replaces_previous_cpt_rows(small_db: Path, tmp_path: Path) -> None:
    first = tmp_path / "a.tsv"
    first.write_text(
        "99213\tSYNTHETIC TEST DESCRIPTOR ALPHA\n70450\tSYNTHETIC TEST DESCRIPTOR BETA\n"
    )
    import_cpt(small_db, first, progress=quiet)
    second = tmp_path / "b.tsv"
    second.write_text("99214\tSYNTHETIC TEST DESCRIPTOR GAMMA\n")
    report = import_cpt(small_db, second, progress=quiet)
    assert report.replaced == 2 and report.imported == 1
    catalog = CodeCatalog.open(small_db)
    assert catalog.lookup("99213") == []
    assert catalog.lookup("99214")[0].title == "SYNTHETIC TEST DESCRIPTOR GAMMA"
    with sqlite3.connect(small_db) as conn:
        assert conn.execute("SELECT count(*) FROM codes WHERE system='cpt'").fetchone()[0] == 2


def test_unusable_file_changes_nothing(small_db: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.tsv"
    good.write_text("99213\tSYNTHETIC TEST DESCRIPTOR ALPHA\n")
    import_cpt(small_db, good, progress=quiet)
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not a code file\nnor is this\n")
    with pytest.raises(CptImportError, match="no CPT codes"):
        import_cpt(small_db, bad, progress=quiet)
    assert CodeCatalog.open(small_db).lookup("99213")[0].title == "SYNTHETIC TEST DESCRIPTOR ALPHA"


def test_missing_database(tmp_path: Path) -> None:
    file = tmp_path / "cpt.tsv"
    file.write_text("99213\tSYNTHETIC TEST DESCRIPTOR ALPHA\n")
    with pytest.raises(CptImportError, match="data build"):
        import_cpt(tmp_path / "none.sqlite", file, progress=quiet)


def test_catalog_sees_import_made_while_open(small_db: Path, tmp_path: Path) -> None:
    catalog = CodeCatalog.open(small_db)
    assert not catalog.has_cpt() and catalog.lookup("99213") == []
    file = tmp_path / "cpt.tsv"
    file.write_text("99213\tSYNTHETIC TEST DESCRIPTOR ALPHA\n")
    import_cpt(small_db, file, progress=quiet)
    assert catalog.has_cpt()
    assert catalog.lookup("99213")[0].source["code_set"] == "CPT®"
