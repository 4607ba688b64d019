"""One answer per interaction or mention, even when two sessions receive it.

During a rolling deploy two processes hold sessions on the same shard, and Discord sends
every event to both. Two real discord.py clients (each with its own LookupService over one
shared state database) run against one fake gateway that, like Discord, accepts only the
first callback of an interaction (a second gets 400, code 40060). The user is charged once,
answered once, and the losing process neither refunds the winner's charge nor posts a
"couldn't deliver" notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord_bot import DiscordAdapter, running_bot
from bot.app import open_service
from bot.config import DEFAULT_CODES_DB, Settings
from tests.fakes.fake_discord import ALREADY_ACKNOWLEDGED, Call, FakeDiscord

CODES_DB = Path(os.environ.get("CODEBOT_CODES_DB") or DEFAULT_CODES_DB)
pytestmark = pytest.mark.skipif(not CODES_DB.is_file(), reason=f"code DB {CODES_DB} not built")
# One lookup in all: a refunded charge would show as a second lookup being allowed.
ONE_LOOKUP = {"guest_plan": "one", "plans": {"one": {"limit": 1, "period": "lifetime"}}}


def settings_for(tmp_path: Path, fake: FakeDiscord) -> Settings:
    """Both processes' settings: the same fake, the same state database."""
    return Settings(
        codes_db=CODES_DB,
        database_url=f"sqlite:///{tmp_path}/state.sqlite",
        discord_token="fake-token",
        discord_api_url=fake.api_url,
        discord_gateway_url=fake.gateway_url,
        quota=ONE_LOOKUP,
    )


@contextlib.asynccontextmanager
async def two_sessions(tmp_path: Path, fake: FakeDiscord) -> AsyncIterator[list[DiscordAdapter]]:
    """Two processes, each with a session on shard 0 of 1."""
    settings = settings_for(tmp_path, fake)
    async with contextlib.AsyncExitStack() as stack:
        adapters = []
        for _ in range(2):
            service = await stack.enter_async_context(open_service(settings))
            adapters.append(await stack.enter_async_context(running_bot(settings, service)))
        await fake.wait_identified(count=2)
        yield adapters


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


def text_of(message: dict[str, Any]) -> str:
    """Visible text of a message: content, embed titles and descriptions."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
    return "\n".join(parts).strip()


async def settle(fake: FakeDiscord, quiet: float = 0.5) -> None:
    """Wait until no REST call arrived for `quiet` seconds."""
    seen = -1
    while seen != len(fake.calls):
        seen = len(fake.calls)
        await asyncio.sleep(quiet)


def callbacks(fake: FakeDiscord, payload: dict[str, Any]) -> list[Call]:
    """Every callback attempt for one interaction."""
    return [c for c in fake.calls if c.path.startswith(f"/interactions/{payload['id']}/")]


async def test_replayed_interaction_answered_once_and_not_refunded(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    async with two_sessions(tmp_path, fake):
        payload = fake.slash_payload("E11.9")
        await fake.dispatch("INTERACTION_CREATE", payload)  # both sessions receive it
        await fake.wait_for_call(lambda c: c.path.startswith(f"/interactions/{payload['id']}/"))
        await settle(fake)
        attempts = callbacks(fake, payload)
        answered = [c for c in attempts if c.status == 200]
        assert len(answered) == 1
        assert text_of(answered[0].message()).startswith("E11.9")
        # The other process, if it tried, was refused like Discord refuses a second ack ...
        assert all(c.status == 400 for c in attempts if c is not answered[0])
        # ... and did not follow up with a failure notice anywhere.
        assert not any("couldn't deliver" in text_of(c.message()) for c in fake.calls)

        # Charged once and NOT refunded: the one lookup is used up.
        after = fake.slash_payload("I10")
        await fake.dispatch("INTERACTION_CREATE", after)
        await fake.wait_for_call(lambda c: c.path.startswith(f"/interactions/{after['id']}/"))
        await settle(fake)
        (answer,) = [c for c in callbacks(fake, after) if c.status == 200]
        assert "No code lookups left" in text_of(answer.message())


async def test_replayed_mention_replied_to_once(fake: FakeDiscord, tmp_path: Path) -> None:
    async with two_sessions(tmp_path, fake):
        message = fake.message_payload(f"<@{fake.bot_id}> E11.9")
        await fake.dispatch("MESSAGE_CREATE", message)
        channel = f"/channels/{message['channel_id']}/messages"
        await fake.wait_for_call(lambda c: c.path == channel)
        await settle(fake)
        replies = [c for c in fake.calls if c.path == channel]
        assert len(replies) == 1
        assert text_of(replies[0].json).startswith("E11.9")
        # Charged once, kept: the next lookup is refused.
        again = fake.message_payload(f"<@{fake.bot_id}> I10")
        await fake.dispatch("MESSAGE_CREATE", again)
        await fake.wait_for_call(
            lambda c: (
                c.path == channel and c.json["message_reference"]["message_id"] == int(again["id"])
            )
        )
        await settle(fake)
        answers = [
            c
            for c in fake.calls
            if c.path == channel and c.json["message_reference"]["message_id"] == int(again["id"])
        ]
        assert len(answers) == 1
        assert "No code lookups left" in text_of(answers[0].json)


async def test_fake_refuses_a_second_callback(fake: FakeDiscord, tmp_path: Path) -> None:
    """The rule the tests above rely on, as Discord applies it."""
    async with two_sessions(tmp_path, fake):
        payload = fake.slash_payload("help")
        await fake.dispatch("INTERACTION_CREATE", payload)
        await fake.wait_for_call(lambda c: c.path.startswith(f"/interactions/{payload['id']}/"))
        await settle(fake)
        statuses = sorted(c.status for c in callbacks(fake, payload))
        assert statuses[0] == 200 and all(s == 400 for s in statuses[1:])
        assert ALREADY_ACKNOWLEDGED == 40060
