"""ICD-10-CM releases: FY2027 in force, earlier years beside it, answers as of a date.

Expected facts are computed here from the source files (order file, addenda, tabular XMLs).
"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from bot.app import open_service
from bot.codes.catalog import CodeCatalog
from bot.codes.sources import DATA_DIR, icd10cm
from bot.codes.sources.icd10cm_history import SIMPLE_2025, XML_2025, rows_snapshot
from bot.codes.sources.wheels import read_member
from bot.config import Settings
from bot.model import CodeCard, CodeSystem, ReplyKind, Request, UserRef
from tests.addenda import summary_counts

ORDER_2027 = DATA_DIR / "icd10cm" / "icd10cm_order_2027.txt.gz"
ADDENDA_2027 = DATA_DIR / "icd10cm" / "icd10cm_order_addenda_2027.txt.gz"
BEFORE = date(2026, 9, 30)  # last day of FY2026
AFTER = date(2026, 10, 1)  # first day of FY2027


def cm(catalog: CodeCatalog, code: str, day: date | None) -> CodeCard:
    (card,) = [c for c in catalog.lookup(code, day) if c.system is CodeSystem.ICD10CM]
    return card


def order_file() -> dict[str, tuple[bool, str]]:
    with gzip.open(ORDER_2027, "rt", encoding="ascii") as handle:
        return {line[6:13].strip(): (line[14] == "1", line[77:].strip()) for line in handle}


def addenda_summary() -> dict[str, int]:
    return summary_counts(gzip.decompress(ADDENDA_2027.read_bytes()).decode("ascii"))


def test_fy2027_billable_set_equals_the_order_file(codes_db_path: Path) -> None:
    import sqlite3

    expected = {key for key, (billable, _title) in order_file().items() if billable}
    conn = sqlite3.connect(codes_db_path)
    try:
        stored = {
            key
            for (key,) in conn.execute(
                "SELECT key FROM codes WHERE system = 'icd10cm' AND billable = 1"
            )
        }
    finally:
        conn.close()
    assert stored == expected
    assert len(expected) == 74_879


def test_fy2027_titles_are_the_order_file_titles(catalog: CodeCatalog) -> None:
    order = order_file()
    for key in ("L02232", "Z2914", "D6911", "E119"):
        card = cm(catalog, key, AFTER)
        assert card.title == order[key][1]


def test_changes_counts_equal_the_addenda_summary(catalog: CodeCatalog) -> None:
    changes = catalog.changes("icd10cm", "FY2027", AFTER)
    assert changes is not None
    assert changes.counts == addenda_summary()


def test_fy2025_april_to_fy2026_diff_from_the_two_xmls(
    catalog: CodeCatalog, tmp_path: Path
) -> None:
    xml = tmp_path / "icd10cm-tabular-April-2025.xml"
    xml.write_bytes(read_member(SIMPLE_2025, XML_2025))
    old = rows_snapshot(icd10cm.load(xml).rows)
    new = rows_snapshot(icd10cm.load().rows)
    added = {k for k, v in new.items() if v[2] and not (k in old and old[k][2])}
    deleted = {k for k, v in old.items() if v[2] and not (k in new and new[k][2])}
    revised = {k for k, v in new.items() if v[2] and k in old and old[k][2] and old[k][1] != v[1]}
    assert (len(added), len(deleted), len(revised)) == (487, 28, 38)
    changes = catalog.changes("icd10cm", "FY2026", AFTER, full=True)
    assert changes is not None
    assert changes.counts == {"added": 487, "deleted": 28, "revised": 38}
    by_kind = {
        kind: {e.code.replace(".", "") for e in changes.entries if e.change == kind}
        for kind in ("added", "deleted", "revised")
    }
    assert by_kind == {"added": added, "deleted": deleted, "revised": revised}


def test_d69_1_billable_until_fy2026_then_a_header(catalog: CodeCatalog) -> None:
    before, after = cm(catalog, "D69.1", BEFORE), cm(catalog, "D69.1", AFTER)
    assert before.billable and before.effective["release"] == "FY2026"
    assert not before.children  # D69.11/D69.19 did not exist yet
    assert not after.billable and after.effective["release"] == "FY2027"
    assert {c.code for c in after.children} == {"D69.11", "D69.19"}
    assert any("billable until FY2026" in line for line in after.history)


def test_z87_890_and_its_new_children(catalog: CodeCatalog) -> None:
    assert cm(catalog, "Z87.890", BEFORE).billable
    assert not cm(catalog, "Z87.890", AFTER).billable
    new_child = cm(catalog, "Z87.8901", BEFORE)
    assert new_child.status == "not_yet_valid"
    assert new_child.effective["valid_from"] == "2026-10-01"
    assert cm(catalog, "Z87.8901", AFTER).billable


def test_e11_a_not_valid_before_fy2026(catalog: CodeCatalog) -> None:
    early = cm(catalog, "E11.A", date(2025, 3, 1))
    assert early.status == "not_yet_valid" and not early.billable
    assert early.effective["valid_from"] == "2025-10-01"
    assert early.effective["release"] == "FY2025"
    late = cm(catalog, "E11.A", date(2025, 10, 1))
    assert late.billable and late.status == "active"
    assert "new in FY2026 (2025-10-01)" in late.history


def test_g35_billable_until_fy2025_then_a_category(catalog: CodeCatalog) -> None:
    assert cm(catalog, "G35", date(2025, 9, 30)).billable
    assert not cm(catalog, "G35", date(2025, 10, 1)).billable
    assert cm(catalog, "G35", date(2019, 1, 1)).billable


def test_a_code_deleted_in_fy2027_says_when_it_was_valid(catalog: CodeCatalog) -> None:
    order = order_file()
    assert "S23420A" not in order
    gone = cm(catalog, "S23.420A", AFTER)
    assert gone.status == "not_valid" and not gone.billable
    assert gone.effective["valid_to"] == "2026-09-30"
    assert cm(catalog, "S23.420A", BEFORE).billable
    today = cm(catalog, "S23.420A", None)
    assert today.status == "deleted"


def test_fy2027_notes_come_from_the_fy2026_tabular(catalog: CodeCatalog) -> None:
    card = cm(catalog, "D69.11", AFTER)
    assert card.source["notes_release"] == "FY2026"


async def test_history_and_changes_cost_one_lookup(codes_db_path: Path, tmp_path: Path) -> None:
    settings = Settings(
        codes_db=codes_db_path,
        database_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
        quota={"guest_plan": "registered"},
        today="2026-12-01",
    )
    user = UserRef("console", "t1", "u1")
    async with open_service(settings) as service:
        history = await service.handle(Request(user, "/code history D69.1", request_id="r1"))
        assert history.kind is ReplyKind.INFO
        assert "FY2027" in history.text and "D69.11" in history.text
        assert "5 code lookups remaining" in history.notice
        changes = await service.handle(Request(user, "/code changes icd10cm", request_id="r2"))
        summary = addenda_summary()
        assert f"{summary['added']} new, {summary['deleted']} deleted" in changes.text
        assert "4 code lookups remaining" in changes.notice
        assert [a.kind for a in changes.actions] == ["run"]
        full = await service.handle(Request(user, changes.actions[0].value, request_id="r3"))
        assert "Z87.8909" in full.text
        unknown = await service.handle(Request(user, "/code changes cm FY1999", request_id="r4"))
        assert unknown.kind is ReplyKind.INVALID and not unknown.notice
        dated = await service.handle(Request(user, "/code D69.1 on 2026-09-30", request_id="r5"))
        (card,) = [i for i in dated.items if isinstance(i, CodeCard)]
        assert card.billable and card.as_of == "2026-09-30"


@pytest.mark.parametrize(
    "text", ["/code history", "/code history E11.9 I10", "/code changes x y z"]
)
def test_bad_history_and_changes_requests_are_refused(text: str) -> None:
    from bot.commands import CommandKind, parse

    assert parse(text).kind is CommandKind.INVALID


def test_deleted_codes_name_the_codes_added_below_them(catalog: CodeCatalog) -> None:
    text = gzip.decompress(ADDENDA_2027.read_bytes()).decode("ascii")
    added = [
        line[15:22].strip()
        for line in text.splitlines()
        if line.startswith("Add:") and line[13] == "1"
    ]
    expected = [key for key in added if key.startswith("D691")]
    assert expected  # the addenda add billable codes below D69.1
    card = cm(catalog, "D69.1", AFTER)
    shown = " ".join(f"{key[:3]}.{key[3:]}" for key in expected)
    assert any(line.endswith(f"→ use {shown}") for line in card.history)
    changes = catalog.changes("icd10cm", "FY2027", AFTER, full=True)
    assert changes is not None
    (entry,) = [e for e in changes.entries if e.change == "deleted" and e.code == "D69.1"]
    assert entry.replaced_by == shown
