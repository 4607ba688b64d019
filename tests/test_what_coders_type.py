"""What coders type (issue 9, items 12-16): pasted lists, did you mean, collisions, CPT®
modifiers, more than ten codes, all through the real service and code database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import open_service
from bot.codes.catalog import CodeCatalog
from bot.config import Settings
from bot.model import CodeSystem, CptInfo, NotFound, Reply, ReplyKind
from bot.render import render_text
from bot.service import LookupService
from tests.test_service import cards, request

PRO = {"guest_plan": "pro"}


@pytest.fixture
async def service(codes_db_path: Path, tmp_path: Path) -> AsyncIterator[LookupService]:
    settings = Settings(
        codes_db=codes_db_path, database_url=f"sqlite:///{tmp_path / 's.sqlite'}", quota=PRO
    )
    async with open_service(settings) as opened:
        yield opened


def shown(reply: Reply) -> list[str]:
    return [item.code for item in cards(reply)]


def charged(reply: Reply) -> int:
    return 500 - int(reply.notice.split()[0])


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("E11.9, I10", ["E11.9", "I10"]),
        ("E11.9;I10", ["E11.9", "I10"]),
        ("N18.30,E11.22", ["N18.30", "E11.22"]),
        ("S72.001A.", ["S72.001A"]),
        ("(E11.9), I10.", ["E11.9", "I10"]),
    ],
)
async def test_pasted_lists_are_codes(
    service: LookupService, typed: str, expected: list[str]
) -> None:
    reply = await service.handle(request(typed))
    assert reply.kind is ReplyKind.CARDS
    assert shown(reply) == expected
    assert charged(reply) == len(expected)


async def test_a_list_of_words_is_still_a_search(service: LookupService) -> None:
    assert (await service.handle(request("knee, brace"))).kind is ReplyKind.SEARCH


def not_found(reply: Reply) -> NotFound:
    (item,) = reply.items
    assert isinstance(item, NotFound), reply
    return item


async def test_did_you_mean_in_chat_matches_the_cli(
    service: LookupService, catalog: CodeCatalog
) -> None:
    for typed in ("0DTJ4Z", "0SRC0J9Z", "E11.99"):
        item = not_found(await service.handle(request(typed)))
        assert [s.code for s in item.suggestions] == [s.code for s in catalog.suggest(typed)]
    pcs = not_found(await service.handle(request("0DTJ4Z")))
    assert {"0DTJ4ZZ", "0DTJ4ZG"} <= {s.code for s in pcs.suggestions}
    assert pcs.message.startswith("0DTJ4Z is not a valid ICD-10-PCS code")
    long = not_found(await service.handle(request("0SRC0J9Z")))
    assert long.suggestions[0].code == "0SRC0J9"


async def test_placeholder_family_in_code_order(
    service: LookupService, catalog: CodeCatalog
) -> None:
    item = not_found(await service.handle(request("T81.4XXA")))
    (parent,) = catalog.lookup("T81.4")
    expected = [f"{child.code}XA" for child in parent.children]  # T81.40 … T81.49
    assert [s.code for s in item.suggestions] == expected
    assert all(s.billable for s in item.suggestions)


async def test_not_valid_names_the_code_set_and_echoes_the_input(service: LookupService) -> None:
    item = not_found(await service.handle(request("e11.90")))
    assert item.message.startswith("e11.90 is not a valid ICD-10-CM code.")
    (hcpcs,) = cards(await service.handle(request("E1190")))  # the undotted form is HCPCS
    assert hcpcs.system is CodeSystem.HCPCS


@pytest.mark.parametrize(("typed", "icd"), [("J1100", "J11.00"), ("K0856", "K08.56")])
async def test_hcpcs_first_with_a_pointer_to_icd10cm(
    service: LookupService, catalog: CodeCatalog, typed: str, icd: str
) -> None:
    reply = await service.handle(request(typed))
    (card,) = cards(reply)
    assert card.system is CodeSystem.HCPCS and card.code == typed
    (also,) = [value for label, value in card.attributes if label == "Also ICD-10-CM"]
    (icd_card,) = catalog.lookup(icd)
    assert also.startswith(f"{icd} {icd_card.title}")
    assert charged(reply) == 1
    assert f"Also ICD-10-CM: {icd}" in render_text(reply)


@pytest.mark.parametrize("typed", ["25", "-25", "modifier 59", "26", "59"])
async def test_cpt_modifiers(service: LookupService, typed: str) -> None:
    reply = await service.handle(request(typed))
    (item,) = reply.items
    assert isinstance(item, CptInfo) and item.kind == "modifier"
    text = render_text(reply)
    assert "CPT® modifier" in text and "AMA" in text
    assert reply.notice == ""  # free, like a CPT code without a licence
    if item.code == "59":
        assert [ref.code for ref in item.see_also] == ["XE", "XP", "XS", "XU"]
        for ref in item.see_also:
            assert ref.title in text


async def test_more_than_ten_codes(service: LookupService, catalog: CodeCatalog) -> None:
    typed = [ref.code for ref in catalog.suggest("E11", limit=12)]  # billable codes under E11
    assert len(typed) == 12
    reply = await service.handle(request(" ".join(typed)))
    assert shown(reply) == typed[:10]
    assert reply.omitted == tuple(typed[10:])
    assert charged(reply) == 10
    text = render_text(reply)
    assert "Not answered" in text and all(code in text for code in typed[10:])


async def test_repeated_code_is_one_card_and_one_charge(service: LookupService) -> None:
    reply = await service.handle(request("E11.9 e119 E11.9, e11.9"))
    assert shown(reply) == ["E11.9"]
    assert charged(reply) == 1
    assert [a.value for a in reply.actions if a.kind == "share"] == ["share E11.9"]
