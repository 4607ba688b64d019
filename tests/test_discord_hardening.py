"""Discord: user-typed names and notes never render live; autocomplete normalises as the
command does (issue 12, items 13 and 14). The real discord.py client against the fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.fake_discord import ADMIN_PERMISSIONS, FakeDiscord
from tests.test_discord_adapter import embed_text, make_settings, start_bot

# a display name that Discord markdown would turn into a link, bold text and a ping display
HOSTILE_NAME = "[free lookups](https://evil.example/x) **boss** @everyone"
LIVE_LINK = "[free lookups](https://evil.example/x)"
ESCAPED_LINK = "\\[free lookups\\](https://evil.example/x)"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A fresh fake Discord per test."""
    async with FakeDiscord() as server:
        yield server


async def test_display_names_are_escaped_in_recent_and_admin_usage(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    async with start_bot(fake, make_settings(tmp_path, fake)) as bot:
        await bot.slash("E11.9", global_name=HOSTILE_NAME)
        recent = embed_text((await bot.slash("recent")).message())
        usage = embed_text(
            (await bot.slash("admin usage", permissions=ADMIN_PERMISSIONS)).message()
        )
        for text in (recent, usage):
            assert ESCAPED_LINK in text, text
            assert LIVE_LINK not in text.replace(ESCAPED_LINK, "")
            assert "\\*\\*boss\\*\\*" in text
            assert "@everyone" not in text
        assert "E11.9" in recent  # our own text is untouched


async def test_note_confirmation_is_escaped_like_the_note(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    async with start_bot(fake, make_settings(tmp_path, fake)) as bot:
        saved = (await bot.slash(f"note E11.9 see {LIVE_LINK}")).message()
        text = embed_text(saved)
        assert ESCAPED_LINK in text and LIVE_LINK not in text.replace(ESCAPED_LINK, "")
        card = embed_text((await bot.slash("E11.9")).message())
        assert ESCAPED_LINK in card


def _choice_values(call_json: dict[str, object]) -> list[str]:
    data = call_json["data"]
    assert isinstance(data, dict)
    return [choice["value"] for choice in data["choices"]]


async def test_autocomplete_normalises_full_width_text(fake: FakeDiscord, tmp_path: Path) -> None:
    async with start_bot(fake, make_settings(tmp_path, fake)) as bot:
        for ascii_text, full_width in (
            ("E11", "Ｅ１１"),
            ("e11.9", "ｅ１１．９"),
            ("share E11.9", "ｓｈａｒｅ\u3000Ｅ１１．９"),
            ("knee brace", "ｋｎｅｅ\u3000ｂｒａｃｅ"),
        ):
            plain = await bot.interact(fake.autocomplete_payload(ascii_text))
            wide = await bot.interact(fake.autocomplete_payload(full_width))
            expected = _choice_values(plain.json)
            assert expected, ascii_text
            assert _choice_values(wide.json) == expected, full_width


async def test_grant_and_plan_confirmations_are_escaped(fake: FakeDiscord, tmp_path: Path) -> None:
    admin = {"permissions": ADMIN_PERMISSIONS}
    target = "[win](https://evil.example/y)"
    escaped = "\\[win\\](https://evil.example/y)"
    async with start_bot(fake, make_settings(tmp_path, fake)) as bot:
        for command in (f"admin grant {target} 5", f"admin plan {target} pro"):
            text = embed_text((await bot.slash(command, **admin)).message())
            assert escaped in text, text
            assert target not in text.replace(escaped, "")
