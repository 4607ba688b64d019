"""Blocks and partial PCS codes are reachable from the chat (issue 9, item 7; item 10's PCS
imaging qualifiers).

Expected facts are read here, independently of the readers under test, from the CDC tabular
XML shipped in simple-icd-10-cm and from the CMS PCS tables XML.
"""

from __future__ import annotations

import gzip
import itertools
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path

import pytest

from bot.app import open_service
from bot.codes.normalize import CodeShape, shape_of
from bot.codes.sources import DATA_DIR
from bot.codes.sources.icd10cm import xml_path
from bot.codes.sources.icd10pcs import TABLES_FILE
from bot.commands import CommandKind, parse
from bot.config import Settings
from bot.json_output import card_json
from bot.model import CodeCard, CodeSystem, NotFound, Reply
from bot.service import LookupService
from tests.test_service import request

PRO = {"guest_plan": "pro"}


@pytest.fixture
async def service(codes_db_path: Path, tmp_path: Path) -> AsyncIterator[LookupService]:
    settings = Settings(
        codes_db=codes_db_path, database_url=f"sqlite:///{tmp_path / 's.sqlite'}", quota=PRO
    )
    async with open_service(settings) as opened:
        yield opened


def words(elem: ET.Element | None) -> str:
    return " ".join(((elem.text if elem is not None else "") or "").split())


@cache
def tabular() -> ET.Element:
    return ET.parse(xml_path()).getroot()


def section(block: str) -> ET.Element:
    return next(s for s in tabular().iter("section") if s.get("id") == block)


@cache
def pcs_tables() -> ET.Element:
    with gzip.open(DATA_DIR / "icd10pcs" / TABLES_FILE, "rb") as fh:
        return ET.parse(fh).getroot()


def table_prefix(table: ET.Element) -> str:
    heads = {axis.get("pos"): axis for axis in table.findall("axis")}
    return "".join(heads[pos].find("label").get("code", "") for pos in "123")  # type: ignore[union-attr]


def pcs_table(prefix: str) -> ET.Element:
    return next(t for t in pcs_tables().iter("pcsTable") if table_prefix(t) == prefix)


def row_axes(row: ET.Element) -> dict[str, tuple[str, dict[str, str]]]:
    """pos -> (axis title, {char: label}) of one pcsRow."""
    return {
        axis.get("pos", ""): (
            words(axis.find("title")),
            {lab.get("code", ""): words(lab) for lab in axis.iter("label")},
        )
        for axis in row.findall("axis")
    }


def codes_of_table(prefix: str) -> set[str]:
    out: set[str] = set()
    for row in pcs_table(prefix).findall("pcsRow"):
        axes = row_axes(row)
        for combo in itertools.product(*(axes[pos][1] for pos in "4567")):
            out.add(prefix + "".join(combo))
    return out


def only(reply: Reply) -> CodeCard:
    (item,) = reply.items
    assert isinstance(item, CodeCard), reply
    return item


def not_found(reply: Reply) -> NotFound:
    (item,) = reply.items
    assert isinstance(item, NotFound), reply
    return item


def test_block_and_row_shapes_are_codes() -> None:
    for typed in ("E08-E13", "i10-i1a", "0DTJ", "0DTJ4"):
        assert shape_of(typed) is CodeShape.CODE
    assert shape_of("knee-brace") is CodeShape.WORD
    command = parse("/code Diabetes (E08-E13)")
    assert command.kind is CommandKind.SEARCH  # a word beside it: still a search
    assert [t.text for t in parse("/code (E08-E13)").codes] == ["E08-E13"]


@pytest.mark.parametrize("typed", ["E08-E13", "i10-i1a", "(I10-I1A)"])
async def test_block_card_lists_its_categories_and_notes(
    service: LookupService, typed: str
) -> None:
    card = only(await service.handle(request(f"/code {typed}")))
    block = section(typed.strip("()").upper())
    assert (card.system, card.kind, card.billable) == (CodeSystem.ICD10CM, "block", False)
    assert card.title == words(block.find("desc")).rsplit(" (", 1)[0]
    assert [c.code for c in card.children] == [words(d.find("name")) for d in block.findall("diag")]
    for note in block.findall("excludes1/note"):
        assert any(line.startswith(words(note)) for line in card.notes["excludes1"])


async def test_a_range_that_is_no_block_points_at_blocks(service: LookupService) -> None:
    item = not_found(await service.handle(request("/code E08-E10")))
    assert item.message.startswith("E08-E10 is not a valid ICD-10-CM block.")
    holding = next(
        s.get("id")
        for s in tabular().iter("section")
        if any(words(d.find("name")) == "E08" for d in s.findall("diag"))
    )
    assert holding in [s.code for s in item.suggestions]


async def test_body_system_card(service: LookupService) -> None:
    card = only(await service.handle(request("/code 0d")))
    tables = [t for t in pcs_tables().iter("pcsTable") if table_prefix(t).startswith("0D")]
    body = next(a for a in tables[0].findall("axis") if a.get("pos") == "2")
    assert (card.code, card.kind) == ("0D", "body_system")
    assert card.title == words(body.find("label"))
    assert {c.code for c in card.children} == {table_prefix(t) for t in tables}


async def test_a_modifier_wins_over_a_body_system(service: LookupService) -> None:
    assert only(await service.handle(request("/code GZ"))).system is CodeSystem.HCPCS
    assert isinstance(not_found(await service.handle(request("/code modifier XX"))), NotFound)


@pytest.mark.parametrize("typed", ["0DTJ", "0dtj4"])
async def test_row_prefix_lists_the_codes_of_the_row(service: LookupService, typed: str) -> None:
    key = typed.upper()
    card = only(await service.handle(request(f"/code {typed}")))
    assert (card.code, card.kind, card.billable) == (key, "table_row", False)
    expected = {code for code in codes_of_table(key[:3]) if code.startswith(key)}
    assert {c.code for c in card.children} == expected
    assert card.children_total == len(expected)
    assert [p.code for p in card.parents] == [key[0], key[:2], key[:3]]
    # axes by position and value: "4 Body Part: J Appendix"
    row = next(r for r in pcs_table(key[:3]).findall("pcsRow") if "J" in row_axes(r)["4"][1])
    title, labels = row_axes(row)["4"]
    assert card.attributes[3] == (f"4 {title}", f"J {labels['J']}")
    assert len(card.attributes) == len(key)


async def test_an_existing_code_wins_over_a_row(service: LookupService) -> None:
    (card,) = (await service.handle(request("/code B020"))).items
    assert isinstance(card, CodeCard) and card.system is CodeSystem.ICD10CM
    table = only(await service.handle(request("/code 0DT")))
    assert (table.kind, len(table.children)) == ("table", 50)


async def test_invalid_pcs_code_says_which_axis_breaks_the_row(service: LookupService) -> None:
    rows = [r for r in pcs_table("0DT").findall("pcsRow") if "J" in row_axes(r)["4"][1]]
    approach: dict[str, str] = {}
    for row in rows:
        approach.update(row_axes(row)["5"][1])
    assert "3" not in approach
    title = row_axes(rows[0])["5"][0]
    item = not_found(await service.handle(request("/code 0DTJ3ZZ")))
    valid = ", ".join(f"{char} {approach[char]}" for char in sorted(approach))
    assert item.message.startswith("0DTJ3ZZ is not a valid ICD-10-PCS code: ")
    assert f"{title} 3 is not valid in 0DT row J (" in item.message
    assert f"valid: {valid}." in item.message
    assert item.suggestions  # did you mean stays


async def test_near_miss_keeps_did_you_mean(service: LookupService) -> None:
    item = not_found(await service.handle(request("/code 0DTJ4Z")))
    assert item.message.startswith("0DTJ4Z is not a valid ICD-10-PCS code.")
    assert {s.code for s in item.suggestions} >= {
        c for c in codes_of_table("0DT") if c.startswith("0DTJ4Z")
    }


async def test_imaging_qualifiers_are_labelled_by_position(service: LookupService) -> None:
    table = pcs_table("BW4")
    code = sorted(codes_of_table("BW4"))[0]
    titles = {a.get("pos"): words(a.find("title")) for a in table.findall("axis")}
    row = next(r for r in table.findall("pcsRow") if code[3] in row_axes(r)["4"][1])
    titles.update({pos: title for pos, (title, _) in row_axes(row).items()})
    assert titles["6"] == titles["7"]  # two axes named alike: only the position tells
    card = only(await service.handle(request(f"/code {code}")))
    assert [label for label, _ in card.attributes] == [f"{p} {titles[p]}" for p in "1234567"]
    attributes = card_json(card)["attributes"]
    assert len(attributes) == 7
    assert attributes[f"7 {titles['7']}"] == f"{code[6]} {row_axes(row)['7'][1][code[6]]}"
