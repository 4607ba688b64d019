"""ICD-10-PCS and HCPCS releases side by side; expected facts come from the source files."""

from __future__ import annotations

import gzip
import json
import lzma
import xml.etree.ElementTree as ET
import zipfile
from datetime import date

from bot.codes.catalog import CodeCatalog
from bot.codes.sources import DATA_DIR
from bot.codes.sources.icd10pcs_history import DRGPY
from bot.codes.sources.wheels import read_member
from bot.model import CodeCard, CodeSystem
from tests.addenda import summary_counts

PCS = DATA_DIR / "icd10pcs"


def one(catalog: CodeCatalog, code: str, system: CodeSystem, day: date | None) -> CodeCard:
    (card,) = [c for c in catalog.lookup(code, day) if c.system is system]
    return card


def addenda_lines(name: str, action: str) -> set[str]:
    text = gzip.decompress((PCS / name).read_bytes()).decode("ascii")
    return {line[13:20] for line in text.splitlines() if line.startswith(action + ":")}


def test_pcs_changes_counts_equal_the_addenda_summaries(catalog: CodeCatalog) -> None:
    for release, name in (
        ("FY2027", "icd10pcs_codes_addenda_2027.txt.gz"),
        ("FY2026", "order_addenda_2026.txt.gz"),
    ):
        text = gzip.decompress((PCS / name).read_bytes()).decode("ascii")
        changes = catalog.changes("icd10pcs", release, date(2026, 12, 1))
        assert changes is not None
        assert changes.counts == summary_counts(text), release


def test_xw033e6_deleted_in_fy2026(catalog: CodeCatalog) -> None:
    assert "XW033E6" in addenda_lines("order_addenda_2026.txt.gz", "Delete")
    assert one(catalog, "XW033E6", CodeSystem.ICD10PCS, date(2025, 9, 30)).billable
    gone = one(catalog, "XW033E6", CodeSystem.ICD10PCS, date(2025, 10, 1))
    assert gone.status == "not_valid" and gone.effective["valid_to"] == "2025-09-30"


def test_09xk0z1_new_in_fy2026(catalog: CodeCatalog) -> None:
    assert "09XK0Z1" in addenda_lines("order_addenda_2026.txt.gz", "Add")
    early = one(catalog, "09XK0Z1", CodeSystem.ICD10PCS, date(2025, 9, 30))
    assert early.status == "not_yet_valid" and early.effective["valid_from"] == "2025-10-01"
    assert one(catalog, "09XK0Z1", CodeSystem.ICD10PCS, date(2025, 10, 1)).billable


def test_april_2026_pcs_deletions_and_replacements(catalog: CodeCatalog) -> None:
    def drg_codes(version: str) -> set[str]:
        tables = json.loads(
            lzma.decompress(read_member(DRGPY, f"drgpy/runtime_data/{version}.json.xz"))
        )
        return set(tables["prmap"])

    v43, v431 = drg_codes("v43"), drg_codes("v43.1")
    replacements = {
        parts[1]: parts[2]
        for parts in (
            line.split("\t")
            for line in (PCS / "april_2026_update.tsv").read_text().splitlines()
            if line.startswith("delete")
        )
    }
    for old, new in replacements.items():
        assert old in v43 and old not in v431
        assert one(catalog, old, CodeSystem.ICD10PCS, date(2026, 3, 31)).billable
        gone = one(catalog, old, CodeSystem.ICD10PCS, date(2026, 4, 1))
        assert gone.status == "not_valid"
        assert any(f"→ use {new}" in line for line in gone.history)
        assert one(catalog, new, CodeSystem.ICD10PCS, date(2026, 4, 1)).billable
        assert one(catalog, new, CodeSystem.ICD10PCS, date(2026, 3, 31)).status == "not_yet_valid"
    added_by_drg = sorted(v431 - v43)
    assert one(catalog, added_by_drg[0], CodeSystem.ICD10PCS, date(2026, 4, 1)).billable


def test_pcs_fy2027_additions_and_revisions(catalog: CodeCatalog) -> None:
    added = sorted(addenda_lines("icd10pcs_codes_addenda_2027.txt.gz", "Add"))
    card = one(catalog, added[0], CodeSystem.ICD10PCS, date(2026, 10, 1))
    assert card.billable and "new in FY2027 (2026-10-01)" in card.history
    revised = sorted(addenda_lines("icd10pcs_codes_addenda_2027.txt.gz", "Revise to"))
    for code in revised:
        assert any(
            line.startswith("title revised FY2027")
            for line in one(catalog, code, CodeSystem.ICD10PCS, None).history
        )


def _workbook_rows() -> list[dict[str, str]]:
    """The October 2025 HCPCS workbook read independently, with ElementTree."""
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with zipfile.ZipFile(DATA_DIR / "hcpcs" / "HCPC2025_OCT_ANWEB.xlsx") as book:
        strings = [
            "".join(si.itertext()) for si in ET.fromstring(book.read("xl/sharedStrings.xml"))
        ]
        sheet = ET.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iter(main + "row"):
        cells = {}
        for cell in row.iter(main + "c"):
            value = cell.find(main + "v")
            if value is not None and value.text:
                text = strings[int(value.text)] if cell.get("t") == "s" else value.text
                cells[cell.get("r", "").rstrip("0123456789")] = text.strip()
        rows.append(cells)
    header = rows[0]
    return [{header[k]: v for k, v in row.items()} for row in rows[1:]]


def test_hcpcs_october_2025_beside_january_2026(catalog: CodeCatalog) -> None:
    rows = [r for r in _workbook_rows() if r.get("RECID") == "3"]
    valid_in_october = {r["HCPC"] for r in rows if not r.get("TERM DT")}
    held = catalog.calendar.releases("hcpcs")
    assert [r.release for r in held] == ["2025-10", "2026-01"]
    assert held[0].counts["billable"] == len(valid_in_october)
    with gzip.open(DATA_DIR / "hcpcs" / "HCPC2026_JAN_ANWEB_01122026.txt.gz", "rt") as handle:
        ended = sorted(
            line[0:5].strip() for line in handle if line[10] == "3" and line[284:292] == "20251231"
        )
    code = next(c for c in ended if c in valid_in_october)
    assert one(catalog, code, CodeSystem.HCPCS, date(2025, 11, 1)).billable
    after = one(catalog, code, CodeSystem.HCPCS, date(2026, 1, 1))
    assert after.status == "terminated" and not after.billable
    assert any(line.startswith("terminated 2025-12-31") for line in after.history)


def test_hcpcs_code_added_in_january_is_not_valid_in_october(catalog: CodeCatalog) -> None:
    with gzip.open(DATA_DIR / "hcpcs" / "HCPC2026_JAN_ANWEB_01122026.txt.gz", "rt") as handle:
        new = sorted(
            line[0:5].strip() for line in handle if line[10] == "3" and line[268:276] == "20260101"
        )
    card = one(catalog, new[0], CodeSystem.HCPCS, date(2025, 11, 1))
    assert card.status == "not_yet_valid" and card.effective["valid_from"] == "2026-01-01"
    assert "added 2026-01-01" in one(catalog, new[0], CodeSystem.HCPCS, None).history
