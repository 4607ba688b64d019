"""The full card (issue 9, item 3): nothing is cut without a way to see it.

`/code full E11.9` and the Full card button show every note on every platform, privately,
free right after the code was shown; short cards rank note kinds in one fixed order. The
largest cards stay inside Block Kit and Discord limits (checked by the adapters' own
validators and by the fake Discord's independent one).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord_embeds import EPHEMERAL, render_reply, validate_message
from adapters.slack_blocks import block_kit_problems, reply_to_message
from bot.app import open_service
from bot.codes.sources.icd10cm import xml_path
from bot.config import Settings
from bot.model import Reply, ReplyKind
from bot.render import NOTE_ORDER, render_text
from bot.service import LookupService
from tests.fakes.discord_limits import form_errors
from tests.fakes.fake_discord import FakeDiscord
from tests.test_discord_adapter import (
    buttons,
    created,
    embed_text,
    fake,  # noqa: F401  (fixture)
    make_settings,
    start_bot,
)
from tests.test_service import cards, request

PRO = {"guest_plan": "pro"}
LARGEST = ["F02.80", "S72.001", "E11.9", "S72.001A", "S06.0X1A", "I10", "E11", "0DT"]


@pytest.fixture
async def service(codes_db_path: Path, tmp_path: Path) -> AsyncIterator[LookupService]:
    settings = Settings(
        codes_db=codes_db_path, database_url=f"sqlite:///{tmp_path / 's.sqlite'}", quota=PRO
    )
    async with open_service(settings) as opened:
        yield opened


def remaining(reply: Reply) -> int:
    return int(reply.notice.split()[0])


def e11_excludes1() -> list[str]:
    """E11's Excludes1 lines, from the tabular XML."""
    root = ET.parse(xml_path()).getroot()
    e11 = next(d for d in root.iter("diag") if (d.findtext("name") or "").strip() == "E11")
    return [" ".join((n.text or "").split()) for n in e11.findall("excludes1/note")]


def slack_text(payload: dict[str, Any]) -> str:
    parts: list[str] = []
    for block in payload["blocks"]:
        text = block.get("text") or {}
        parts.append(text.get("text", ""))
        parts.extend(f["text"] for f in block.get("fields") or [])
        parts.extend(e.get("text", "") for e in block.get("elements") or [] if "text" in e)
    return "\n".join(str(p) for p in parts)


async def test_full_card_shows_every_note_everywhere(service: LookupService) -> None:
    expected = e11_excludes1()
    assert any("(E10.-)" in line for line in expected)
    assert any("(E13.-)" in line for line in expected)
    short = await service.handle(request("E11.9"))
    short_text = render_text(short)
    assert not all(line in short_text for line in expected)  # the short card cuts them
    assert "/code full E11.9" in short_text
    assert [a.value for a in short.actions] == ["share E11.9", "full E11.9"]
    full = await service.handle(request("full E11.9"))
    assert full.full and not full.public and full.kind is ReplyKind.CARDS
    assert [a.value for a in full.actions] == ["share E11.9"]
    slack = slack_text(reply_to_message(full))
    discord = embed_text(render_reply(full).to_payload())
    for line in expected:
        assert line in render_text(full)
        assert line.replace("&", "&amp;") in slack
        assert line in discord.replace("\\", "")  # Discord escapes markdown characters


async def test_full_card_right_after_the_code_is_free(service: LookupService) -> None:
    first = await service.handle(request("E11.9"))
    full = await service.handle(request("full E11.9"))
    assert remaining(full) == remaining(first)  # nothing more
    other = await service.handle(request("full I10"))  # not shown before: one lookup
    assert remaining(other) == remaining(first) - 1
    someone_else = await service.handle(request("full E11.9", user="u2"))
    assert remaining(someone_else) == 499


async def test_note_kinds_in_one_fixed_order(service: LookupService) -> None:
    reply = await service.handle(request("E11.9"))
    text = render_text(reply)
    assert text.index("Excludes1:") < text.index("Use additional code") < text.index("Includes:")
    slack = slack_text(reply_to_message(reply))
    assert slack.index("Excludes1") < slack.index("Includes")
    names = [f["name"] for f in render_reply(reply).to_payload()["embeds"][0]["fields"]]
    labels = [n for n in names if n in ("Excludes1", "Use additional code", "Includes")]
    assert labels == ["Excludes1", "Use additional code", "Includes"]
    assert NOTE_ORDER.index("excludes1") < NOTE_ORDER.index("code_first")
    assert NOTE_ORDER.index("code_first") < NOTE_ORDER.index("includes")


@pytest.mark.parametrize("code", LARGEST)
async def test_largest_cards_fit_every_platform(service: LookupService, code: str) -> None:
    for text in (code, f"full {code}"):
        reply = await service.handle(request(text))
        assert reply.kind is ReplyKind.CARDS
        slack = reply_to_message(reply)
        assert block_kit_problems(slack) == [], (text, block_kit_problems(slack))
        discord = render_reply(reply).to_payload()
        assert validate_message(discord) == [], text
        assert form_errors(discord) == [], text
        if reply.full:  # nothing cut: every note line, and the children of a subcategory
            # (a PCS table's hundreds of codes cannot fit one Discord message; /code 0DTJ
            # lists a row)
            discord_text = embed_text(discord).replace("\\", "")
            slack_text_ = slack_text(slack).replace("&amp;", "&")
            for card in cards(reply):
                few = card.children_total <= 20
                wanted = [c.code for c in card.children] if few else []
                wanted += [line for lines in card.notes.values() for line in lines]
                for piece in wanted:
                    assert piece in discord_text, (text, piece)
                    assert piece in slack_text_, (text, piece)


async def test_full_card_button_on_discord(fake: FakeDiscord, tmp_path: Path) -> None:  # noqa: F811
    async with start_bot(fake, make_settings(tmp_path, fake, quota=PRO)) as bot:
        sent = created(await bot.slash("E11.9"))
        ids = [b["custom_id"] for b in buttons(sent)]
        assert ids == ["cb:run:share E11.9", "cb:run:full E11.9"]
        click = await bot.interact(fake.component_payload(sent, "cb:run:full E11.9"))
        answer = click.message()
        assert answer["flags"] & EPHEMERAL  # privately
        text = embed_text(answer).replace("\\", "")
        for line in e11_excludes1():
            assert line in text
        assert "499 code lookups remaining" in text  # the lookup was paid, the full card free
    assert fake.refused == []
