"""LookupService end to end over the real code database and a real SQLite state file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_service
from bot.config import Settings
from bot.model import (
    CodeCard,
    CodeSystem,
    CptInfo,
    NotFound,
    Reply,
    ReplyKind,
    Request,
    SearchHit,
    UserRef,
)
from bot.render import render_text
from bot.service import LookupService

UNLIMITED = {"guest_plan": "unlimited"}

Ask = Callable[..., Awaitable[Reply]]


@pytest.fixture
def settings_for(codes_db_path: Path, tmp_path: Path) -> Callable[..., Settings]:
    def make(quota: dict[str, Any] | None = None) -> Settings:
        return Settings(
            codes_db=codes_db_path,
            database_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
            quota=UNLIMITED if quota is None else quota,
        )

    return make


@pytest.fixture
async def service(settings_for: Callable[..., Settings]) -> AsyncIterator[LookupService]:
    async with open_service(settings_for()) as opened:
        yield opened


def request(
    text: str, *, user: str = "u1", team: str = "t1", rid: str = "", admin: bool = False
) -> Request:
    return Request(UserRef("console", team, user, user), text, "c1", admin, rid)


def cards(reply: Reply) -> list[CodeCard]:
    return [item for item in reply.items if isinstance(item, CodeCard)]


async def test_lookup_one_code(service: LookupService) -> None:
    reply = await service.handle(request("/code e11.9"))
    assert reply.kind is ReplyKind.CARDS
    (card,) = cards(reply)
    assert (card.system, card.code, card.billable) == (CodeSystem.ICD10CM, "E11.9", True)
    assert "Type 2 diabetes" in card.title
    assert [parent.code for parent in card.parents][-2:] == ["E08-E13", "E11"]
    assert reply.notice == "Unlimited plan."
    assert [action.value for action in reply.actions] == ["share E11.9", "full E11.9"]


async def test_several_codes_and_sets(service: LookupService) -> None:
    reply = await service.handle(request("E11.9 0DTJ4ZZ A0425 -LT S72.001A"))
    found = [(card.system, card.code) for card in cards(reply)]
    assert found == [
        (CodeSystem.ICD10CM, "E11.9"),
        (CodeSystem.ICD10PCS, "0DTJ4ZZ"),
        (CodeSystem.HCPCS, "A0425"),
        (CodeSystem.HCPCS, "LT"),
        (CodeSystem.ICD10CM, "S72.001A"),
    ]


async def test_category_is_not_billable_and_lists_children(service: LookupService) -> None:
    (card,) = cards(await service.handle(request("E11")))
    assert not card.billable
    assert "E11.9" in [child.code for child in card.children]
    text = render_text(await service.handle(request("E11")))
    assert "not billable" in text


async def test_invalid_code_offers_suggestions(service: LookupService) -> None:
    reply = await service.handle(request("E11.99"))
    (item,) = reply.items
    assert isinstance(item, NotFound)
    assert item.message.startswith("E11.99 is not a valid ICD-10-CM code.")
    assert 1 <= len(item.suggestions) <= 5
    assert reply.notice == ""  # nothing was charged for a miss


async def test_cpt_code_without_licence(service: LookupService) -> None:
    reply = await service.handle(request("77306"))
    (item,) = reply.items
    assert isinstance(item, CptInfo)
    assert item.section == "Radiology"
    assert "import-cpt" in render_text(reply)


async def test_words_search_and_code_shaped_words_fall_back(service: LookupService) -> None:
    reply = await service.handle(request("knee brace"))
    assert reply.kind is ReplyKind.SEARCH
    assert all(isinstance(item, SearchHit) for item in reply.items)
    assert any(item.system is CodeSystem.HCPCS for item in reply.items)
    bladder = await service.handle(request("bladder"))  # PCS-shaped word, not a code
    assert bladder.kind is ReplyKind.SEARCH and bladder.items


async def test_search_in_one_system(service: LookupService) -> None:
    reply = await service.handle(request("search icd10pcs appendectomy"))
    assert reply.items
    assert {item.system for item in reply.items if isinstance(item, SearchHit)} == {
        CodeSystem.ICD10PCS
    }


async def test_share_is_public(service: LookupService) -> None:
    reply = await service.handle(request("share E11.9"))
    assert reply.public and cards(reply)


async def test_team_note_shows_on_card_for_that_team_only(service: LookupService) -> None:
    saved = await service.handle(request("note e119 check A1c date"))
    assert saved.kind is ReplyKind.INFO
    (mine,) = cards(await service.handle(request("E11.9")))
    assert mine.team_note == "check A1c date"
    (theirs,) = cards(await service.handle(request("E11.9", team="other")))
    assert theirs.team_note == ""
    invalid = await service.handle(request("note E99.99 nope"))
    assert invalid.kind is ReplyKind.INVALID


async def test_bad_input_never_raises(service: LookupService) -> None:
    for text in [
        "",
        "x" * 10_000,
        "\x00\x01",
        "🩺💉",
        "'; DROP TABLE codes;--",
        "<!channel>",
        "@everyone E11.9",
        "search",
        "admin grant",
        "note",
    ]:
        reply = await service.handle(request(text))
        assert reply.kind is not ReplyKind.ERROR
        assert len(render_text(reply)) < 6000
        assert "@everyone" not in render_text(reply)


async def test_quota_flow_guest_register_exhausted(
    settings_for: Callable[..., Settings],
) -> None:
    async with open_service(settings_for(quota={})) as guest_service:
        first = await guest_service.handle(request("E11.9", rid="r1"))
        assert first.kind is ReplyKind.CARDS
        assert first.notice.startswith("0 code lookups remaining")
        again = await guest_service.handle(request("E11.9", rid="r1"))  # a retry
        assert again.kind is ReplyKind.CARDS
        refused = await guest_service.handle(request("I10", rid="r2"))
        assert refused.kind is ReplyKind.EXHAUSTED and not refused.items
        assert "/code register" in refused.text
        await guest_service.handle(request("register"))
        after = await guest_service.handle(request("I10", rid="r3"))
        assert after.notice.startswith("4 code lookups remaining")


async def test_unexpected_failure_is_an_error_reply_without_details(
    service: LookupService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> list[SearchHit]:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service._search, "search", broken)  # restored by monkeypatch
    reply = await service.handle(request("knee brace"))
    assert reply.kind is ReplyKind.ERROR
    assert "secret internal detail" not in reply.text and "ref " in reply.text
    assert "secret internal detail" in caplog.text


async def test_a_retried_request_is_marked_replayed(service: LookupService) -> None:
    first = await service.handle(request("E11.9", rid="evt-1"))
    retry = await service.handle(request("E11.9", rid="evt-1"))
    assert not first.replayed and retry.replayed
    assert cards(retry)  # the retry still gets the answer
    search_first = await service.handle(request("knee brace", rid="evt-2"))
    search_retry = await service.handle(request("knee brace", rid="evt-2"))
    assert not search_first.replayed and search_retry.replayed


async def test_unknown_modifier_suggests_modifiers(service: LookupService) -> None:
    (item,) = (await service.handle(request("modifier XX"))).items
    assert isinstance(item, NotFound)
    assert item.suggestions and all(len(ref.code) == 2 for ref in item.suggestions)
