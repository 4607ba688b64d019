"""Real Discord refuses some messages (400, 50035); the fake does too, and codebot never
sends one (issue 12, items 4 and 5): unique custom_ids, counts, lengths, embed sizes, and a
charge for exactly the cards shown.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.discord_limits import INVALID_FORM_BODY
from tests.fakes.fake_discord import FakeDiscord
from tests.test_discord_adapter import (
    CODES_DB,
    buttons,
    embed_text,
    fake,  # noqa: F401  (fixture)
    make_settings,
    start_bot,
)

PRO = {"guest_plan": "pro"}  # 500 lookups: the notice shows how many were charged


def button(custom_id: str, label: str = "Go") -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": label, "custom_id": custom_id}


def row(*components: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(components)}


REFUSED_BODIES = {
    "duplicate custom_id": {
        "components": [row(button("cb:run:share B00"), button("cb:run:share B00"))]
    },
    "custom_id over 100": {"components": [row(button("x" * 101))]},
    "six action rows": {"components": [row(button(f"b{n}")) for n in range(6)]},
    "six buttons in a row": {"components": [row(*(button(f"b{n}") for n in range(6)))]},
    "26 select options": {
        "components": [
            row(
                {
                    "type": 3,
                    "custom_id": "cb:open",
                    "options": [{"label": str(n), "value": str(n)} for n in range(26)],
                }
            )
        ]
    },
    "embed description over 4096": {"embeds": [{"description": "x" * 4097}]},
    "embeds over 6000 in all": {
        "embeds": [{"description": "x" * 4000}, {"description": "y" * 2001}]
    },
    "26 fields": {"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]},
    "empty field value": {"embeds": [{"fields": [{"name": "n", "value": ""}]}]},
    "eleven embeds": {"embeds": [{"title": "t"}] * 11},
    "content over 2000": {"content": "x" * 2001},
}


@pytest.mark.parametrize("case", sorted(REFUSED_BODIES))
async def test_fake_refuses_what_discord_refuses(fake: FakeDiscord, case: str) -> None:  # noqa: F811
    url = f"{fake.api_url}/channels/{fake.channel_ids[fake.guild_ids[0]]}/messages"
    headers = {"Authorization": "Bot fake-token"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=REFUSED_BODIES[case], headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["code"] == INVALID_FORM_BODY
        fine = {"content": "ok", "components": [row(button("a"), button("b"))]}
        async with session.post(url, json=fine, headers=headers) as response:
            assert response.status == 200
    assert len(fake.refused) == 1


def collisions(count: int) -> list[str]:
    """Undotted keys that are a code in two code sets (an ICD-10-CM category and a PCS
    table, like B00), read from the code database."""
    with sqlite3.connect(CODES_DB) as conn:
        rows = conn.execute(
            "SELECT key FROM codes WHERE system IN ('icd10cm', 'icd10pcs') AND length(key) = 3"
            " GROUP BY key HAVING count(DISTINCT system) = 2 ORDER BY key LIMIT ?",
            (count,),
        ).fetchall()
    assert len(rows) == count
    return [key for (key,) in rows]


async def test_colliding_code_is_answered_with_unique_buttons(
    fake: FakeDiscord,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with start_bot(fake, make_settings(tmp_path, fake)) as bot:
        for query, cards in (("B00", 2), ("E11.9 e119", 1), ("E11.9, E11.9, I10", 2)):
            call = await bot.slash(query)
            assert call.status == 200, query
            message = call.message()
            assert len(message["embeds"]) == cards, query
            ids = [b["custom_id"] for b in buttons(message)]
            assert len(ids) == len(set(ids)), ids
    assert fake.refused == []


def charged(message: dict[str, Any]) -> int:
    match = re.search(r"(\d+) code lookups remaining", embed_text(message))
    assert match, embed_text(message)
    return 500 - int(match.group(1))


async def test_charged_for_exactly_the_cards_shown(fake: FakeDiscord, tmp_path: Path) -> None:  # noqa: F811
    typed = collisions(10)  # ten codes, twenty cards
    async with start_bot(fake, make_settings(tmp_path, fake, quota=PRO)) as bot:
        message = (await bot.slash(" ".join(typed))).message()
        cards = [e for e in message["embeds"] if "·" in (e.get("title") or "")]
        assert len(message["embeds"]) == 10
        assert charged(message) == len(cards) == 10
        assert "Not answered" in message["content"]
        left_out = typed[5:]  # each of the first five typed codes gave two cards
        assert all(code in message["content"] for code in left_out)
        repeated = (await bot.slash("E11.9 e119 E11.9")).message()
        assert charged(repeated) == 11  # one more card, one more charge
    assert fake.refused == []
