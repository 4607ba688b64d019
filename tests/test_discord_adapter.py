"""The Discord adapter end to end: the real discord.py client against a fake Discord.

The fake (tests/fakes/fake_discord.py) listens on 127.0.0.1 with an OS-chosen port; the
client logs in over REST, connects to the fake gateway, receives INTERACTION_CREATE /
MESSAGE_CREATE events and answers through REST, where the tests read the answers. Every
message the bot sent in a test is checked against Discord's limits in the fixture teardown.
The service is the real one (code DB from CODEBOT_CODES_DB, state DB in tmp_path).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord_bot import DiscordAdapter, running_bot, sync_commands
from adapters.discord_embeds import EPHEMERAL, validate_choices, validate_message
from bot.app import open_service
from bot.config import DEFAULT_CODES_DB, Settings
from tests.fakes.fake_discord import ADMIN_PERMISSIONS, Call, FakeDiscord
from tests.fakes.slow_service import SlowService

CODES_DB = Path(os.environ.get("CODEBOT_CODES_DB") or DEFAULT_CODES_DB)
pytestmark = pytest.mark.skipif(
    not CODES_DB.is_file(), reason=f"code DB {CODES_DB} not built (make build-data)"
)
UNLIMITED = {"guest_plan": "unlimited"}
TEST_DEFER_AFTER_SECONDS = 8.0
ORIGINAL_BASE = Route.BASE
ORIGINAL_GATEWAY = DiscordWebSocket.DEFAULT_GATEWAY


def make_settings(tmp_path: Path, fake: FakeDiscord, **overrides: Any) -> Settings:
    """Settings pointing at the fake, with a fresh state DB."""
    values: dict[str, Any] = {
        "codes_db": CODES_DB,
        "database_url": f"sqlite:///{tmp_path}/state.sqlite",
        "discord_token": "fake-token",
        "discord_api_url": fake.api_url,
        "discord_gateway_url": fake.gateway_url,
        "quota": UNLIMITED,
    }
    values.update(overrides)
    return Settings(**values)


def check_everything_sent(fake: FakeDiscord) -> None:
    """Every message and autocomplete answer the bot sent respects Discord's limits."""
    for call in fake.calls:
        if call.method not in ("POST", "PATCH") or not isinstance(call.json, dict):
            continue
        if call.path.endswith("/callback"):
            if call.json.get("type") == 8:
                assert validate_choices(call.json["data"]["choices"]) == [], call.json
                continue
            if call.json.get("type") in (5, 6):
                continue  # deferrals carry no message
        if (
            call.path.endswith("/callback")
            or "/webhooks/" in call.path
            or (call.path.startswith("/channels/") and call.path.endswith("/messages"))
        ):
            assert validate_message(call.message()) == [], (call.path, call.json)


@dataclass
class Harness:
    """A running bot and the fake it talks to, with helpers to drive it."""

    fake: FakeDiscord
    adapter: DiscordAdapter

    async def interact(self, payload: dict[str, Any], *, timeout: float = 10.0) -> Call:
        """Dispatch an interaction and return the bot's callback for it."""
        interaction_id = payload["id"]
        start = len(self.fake.calls)
        await self.fake.dispatch("INTERACTION_CREATE", payload)
        return await self.fake.wait_for_call(
            lambda c: c.path.startswith(f"/interactions/{interaction_id}/"),
            after=start,
            timeout=timeout,
        )

    async def slash(self, query: str, **kwargs: Any) -> Call:
        """`/code query:<query>` and the call that carried its answer: the callback, or the
        follow-up when the answer was deferred (a loaded machine can take over 2 s)."""
        payload = self.fake.slash_payload(query, **kwargs)
        start = len(self.fake.calls)
        call = await self.interact(payload)
        if call.json.get("type") != 5:  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
            return call
        return await self.fake.wait_for_call(
            lambda c: c.path.startswith(f"/webhooks/{self.fake.app_id}/{payload['token']}"),
            after=start,
            timeout=10.0,
        )

    async def message(self, payload: dict[str, Any]) -> Call:
        """Dispatch MESSAGE_CREATE and return the bot's channel message."""
        start = len(self.fake.calls)
        await self.fake.dispatch("MESSAGE_CREATE", payload)
        return await self.fake.wait_for_call(
            lambda c: c.path == f"/channels/{payload['channel_id']}/messages", after=start
        )


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@contextlib.asynccontextmanager
async def start_bot(
    fake: FakeDiscord, settings: Settings, *, service: Any = None, **options: Any
) -> AsyncIterator[Harness]:
    """The real service (or `service`) behind a running bot, logged in to the fake."""
    async with contextlib.AsyncExitStack() as stack:
        if service is None:
            service = await stack.enter_async_context(open_service(settings))
        # Tests that read a direct answer must get one even on a loaded CI machine (a cold
        # first search can exceed Discord's 2 s budget there); the fake does not time acks.
        # The deferral path has its own test (defer_after given explicitly).
        options.setdefault("defer_after", TEST_DEFER_AFTER_SECONDS)
        adapter = await stack.enter_async_context(running_bot(settings, service, **options))
        await fake.wait_identified()
        # discord.py fires on_ready ~2 s after READY (guild_ready_timeout); events are
        # handled before that, so waiting for the guilds to be cached is enough.
        await wait_until(lambda: len(adapter.client.guilds) == len(fake.guild_ids))
        yield Harness(fake, adapter)
    # Shutdown restores the class attributes the adapter pointed at the fake.
    assert Route.BASE == ORIGINAL_BASE
    assert DiscordWebSocket.DEFAULT_GATEWAY == ORIGINAL_GATEWAY
    check_everything_sent(fake)


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` until true (for client-side state the fake cannot observe)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
async def bot(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[Harness]:
    async with start_bot(fake, make_settings(tmp_path, fake)) as harness:
        yield harness


def embed_text(message: dict[str, Any]) -> str:
    """All visible text of a message's embeds."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields") or []]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(parts)


def created(call: Call) -> dict[str, Any]:
    """The message object a call created on the fake (with the id Discord gave it)."""
    assert call.created is not None, call
    return call.created


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every component of a message, flattened."""
    return [c for row in message.get("components") or [] for c in row["components"]]


# ---------------------------------------------------------------------- login


async def test_login_and_ready(bot: Harness) -> None:
    fake = bot.fake
    paths = [(c.method, c.path) for c in fake.calls]
    assert ("GET", "/users/@me") in paths
    identify = fake.identifies[0]
    assert identify["token"] == "fake-token"
    intents = discord.Intents._from_value(identify["intents"])
    # Mentions and DMs need message events but never the privileged content intent.
    assert intents.guild_messages and intents.dm_messages and not intents.message_content
    assert [g.id for g in bot.adapter.client.guilds] == [int(fake.guild_ids[0])]
    await asyncio.wait_for(bot.adapter.ready.wait(), 10)  # on_ready fires too
    # No re-sync on a plain start.
    assert not any(c.method == "PUT" for c in fake.calls)


# ---------------------------------------------------------------------- slash command


async def test_slash_lookup_answers_with_embed(bot: Harness) -> None:
    call = await bot.slash("E11.9")
    assert call.json["type"] == 4  # CHANNEL_MESSAGE_WITH_SOURCE, answered directly
    message = call.message()
    assert message["flags"] & EPHEMERAL
    embed = message["embeds"][0]
    assert embed["title"].startswith("E11.9")
    assert "Type 2 diabetes mellitus without complications" in embed["description"]
    assert [b["custom_id"] for b in buttons(message)] == ["cb:run:share E11.9", "cb:run:full E11.9"]
    assert message["allowed_mentions"] == {"parse": []}


async def test_autocomplete_choices(bot: Harness) -> None:
    for typed in ("E11", "diabetes", "type 2 diab", "knee", "heart fail", "share E11"):
        call = await bot.interact(bot.fake.autocomplete_payload(typed))
        assert call.json["type"] == 8
        choices = call.json["data"]["choices"]
        assert validate_choices(choices) == []
        assert 1 <= len(choices) <= 25, typed
    e11 = await bot.interact(bot.fake.autocomplete_payload("E11.9"))
    first = e11.json["data"]["choices"][0]
    assert first["value"] == "E11.9"
    assert first["name"].startswith("E11.9 — Type 2 diabetes mellitus")
    shared = await bot.interact(bot.fake.autocomplete_payload("share E11.9"))
    assert shared.json["data"]["choices"][0]["value"] == "share E11.9"


async def test_autocomplete_is_free(fake: FakeDiscord, tmp_path: Path) -> None:
    # Guest plan: one lookup. Autocompletes must not use it up.
    async with start_bot(fake, make_settings(tmp_path, fake, quota={})) as bot:
        for typed in ("E1", "E11", "E11.", "E11.9"):
            await bot.interact(fake.autocomplete_payload(typed))
        call = await bot.slash("E11.9")
        assert call.message()["embeds"][0]["title"].startswith("E11.9")


async def test_search_then_open_a_hit(bot: Harness) -> None:
    call = await bot.slash("knee brace")
    message = call.message()
    assert "knee brace" in message["embeds"][0]["title"]
    select = buttons(message)[0]
    assert select["type"] == 3 and select["custom_id"] == "cb:open"
    assert 1 <= len(select["options"]) <= 25
    chosen = select["options"][0]["value"]
    click = await bot.interact(
        bot.fake.component_payload(created(call), "cb:open", values=[chosen])
    )
    opened = click.message()
    assert opened["flags"] & EPHEMERAL
    assert opened["embeds"][0]["title"].startswith(chosen)


async def test_search_limited_to_a_code_set(bot: Harness) -> None:
    message = (await bot.slash("search hcpcs wheelchair")).message()
    assert "HCPCS" in embed_text(message)
    assert "ICD-10-CM" not in message["embeds"][0]["description"]


async def test_share_button_posts_publicly(bot: Harness) -> None:
    sent = created(await bot.slash("E11.9"))
    click = await bot.interact(bot.fake.component_payload(sent, "cb:run:share E11.9"))
    assert click.json["type"] == 4
    public = click.message()
    assert not (public.get("flags") or 0) & EPHEMERAL  # a new, public message
    assert public["embeds"][0]["title"].startswith("E11.9")
    assert public["allowed_mentions"]["parse"] == []


async def test_share_double_click_charged_once(fake: FakeDiscord, tmp_path: Path) -> None:
    quota = {"guest_plan": "two", "plans": {"two": {"limit": 2, "period": "lifetime"}}}
    async with start_bot(fake, make_settings(tmp_path, fake, quota=quota)) as bot:
        sent = created(await bot.slash("E11.9"))  # 1 of 2
        for _ in range(2):  # the same click twice: one charge
            share = await bot.interact(fake.component_payload(sent, "cb:run:share E11.9"))
            assert share.message()["embeds"][0]["title"].startswith("E11.9")
        last = (await bot.slash("I10")).message()
        assert "No code lookups left" in embed_text(last)


async def test_quota_exhausted(fake: FakeDiscord, tmp_path: Path) -> None:
    async with start_bot(fake, make_settings(tmp_path, fake, quota={})) as bot:
        first = (await bot.slash("E11.9")).message()
        assert first["embeds"][0]["title"].startswith("E11.9")
        refused = (await bot.slash("I10")).message()
        text = embed_text(refused)
        assert "/code register" in text
        assert "I10" not in text and "hypertension" not in text.lower()
        assert not buttons(refused)


async def test_admin_refusal_without_manage_server(bot: Harness) -> None:
    refused = embed_text((await bot.slash("admin usage")).message())
    allowed = embed_text((await bot.slash("admin usage", permissions=ADMIN_PERMISSIONS)).message())
    assert refused != allowed
    assert "admin" in refused.lower()


async def test_everyone_injection_never_pings(bot: Harness) -> None:
    admin = {"permissions": ADMIN_PERMISSIONS}
    await bot.slash("note E11.9 @everyone check <@123456789012345678> @here **x**", **admin)
    card = (await bot.slash("E11.9")).message()
    note = next(f for f in card["embeds"][0]["fields"] if f["name"] == "Team note")
    assert "check" in note["value"] and "\\*\\*x\\*\\*" in note["value"]  # markdown escaped
    searched = (await bot.slash("@everyone knee brace")).message()
    mention = await bot.message(bot.fake.message_payload(f"<@{bot.fake.bot_id}> @everyone E11.9"))
    for message in (card, searched, mention.json):
        text = embed_text(message)
        assert "@everyone" not in text and "@here" not in text
        assert "<@123456789012345678>" not in text
        assert message["allowed_mentions"]["parse"] == []
    assert mention.json["allowed_mentions"].get("replied_user") is False


@pytest.mark.parametrize(
    "query", ["S72", "0DT", "S72 S72.0 S72.00 S72.001 T14 E11 I10 J45 M54 Z00"]
)
async def test_embed_limits_long_categories(bot: Harness, query: str) -> None:
    message = (await bot.slash(query)).message()
    assert validate_message(message) == []
    assert len(message["embeds"]) == len(query.split())
    if query == "S72":
        embed = message["embeds"][0]
        assert embed["title"].startswith("S72")
        assert any(f["name"].startswith("Children") for f in embed["fields"])


async def test_dm_slash_command(bot: Harness) -> None:
    call = await bot.slash("E11.9", guild_id=None)
    assert call.message()["embeds"][0]["title"].startswith("E11.9")


# ---------------------------------------------------------------------- mentions and DMs


async def test_mention_replies_to_the_message(bot: Harness) -> None:
    payload = bot.fake.message_payload(f"<@{bot.fake.bot_id}> E11.9")
    call = await bot.message(payload)
    assert call.json["message_reference"]["message_id"] == int(payload["id"])
    assert call.json["embeds"][0]["title"].startswith("E11.9")
    assert call.json["allowed_mentions"]["parse"] == []


async def test_dm_message(bot: Harness) -> None:
    payload = bot.fake.message_payload("E11.9", guild_id=None, mention_bot=False)
    call = await bot.message(payload)
    assert call.json["embeds"][0]["title"].startswith("E11.9")


async def test_ignores_bots_and_unmentioned_messages(bot: Harness) -> None:
    start = len(bot.fake.calls)
    await bot.fake.dispatch("MESSAGE_CREATE", bot.fake.message_payload("E11.9", mention_bot=False))
    await bot.fake.dispatch(
        "MESSAGE_CREATE",
        bot.fake.message_payload(f"<@{bot.fake.bot_id}> E11.9", bot_author=True),
    )
    # A later mention is answered, and it is the only message sent.
    await bot.message(bot.fake.message_payload(f"<@{bot.fake.bot_id}> I10"))
    sent = [c for c in bot.fake.calls[start:] if c.path.startswith("/channels/")]
    assert len(sent) == 1


# ---------------------------------------------------------------------- robustness


async def test_slow_answer_is_deferred_then_followed_up(fake: FakeDiscord, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, fake)
    async with (
        open_service(settings) as service,
        start_bot(fake, settings, service=SlowService(service, 0.2), defer_after=0.05) as bot,
    ):
        payload = fake.slash_payload("E11.9")
        deferred = await bot.interact(payload)
        assert deferred.json["type"] == 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
        assert deferred.json["data"]["flags"] & EPHEMERAL
        followup = await fake.wait_for_call(
            lambda c: c.path.startswith(f"/webhooks/{fake.app_id}/{payload['token']}")
        )
        assert followup.message()["embeds"][0]["title"].startswith("E11.9")
        # Answered once: one callback for this interaction.
        callbacks = [c for c in fake.calls if c.path.startswith(f"/interactions/{payload['id']}/")]
        assert len(callbacks) == 1


async def test_rest_error_tells_the_user(bot: Harness) -> None:
    bot.fake.fail_next(r"/callback$", 400, code=50035)
    payload = bot.fake.slash_payload("E11.9")
    await bot.fake.dispatch("INTERACTION_CREATE", payload)
    notice = await bot.fake.wait_for_call(
        lambda c: (
            c.path.startswith(f"/interactions/{payload['id']}/")
            and "couldn't deliver" in embed_text(c.message())
        )
    )
    assert notice.message()["flags"] & EPHEMERAL
    # Still serving.
    assert (await bot.slash("I10")).message()["embeds"][0]["title"].startswith("I10")


async def test_mention_reply_failure_is_reported(bot: Harness) -> None:
    bot.fake.fail_next(r"^/channels/\d+/messages$", 403, code=50013)
    payload = bot.fake.message_payload(f"<@{bot.fake.bot_id}> E11.9")
    await bot.fake.dispatch("MESSAGE_CREATE", payload)
    await bot.fake.wait_for_call(lambda c: "couldn't deliver" in embed_text(c.json or {}))


async def test_rate_limited_reply_is_retried(bot: Harness) -> None:
    bot.fake.fail_next(r"^/channels/\d+/messages$", 429)
    payload = bot.fake.message_payload(f"<@{bot.fake.bot_id}> E11.9")
    await bot.fake.dispatch("MESSAGE_CREATE", payload)
    sent = await bot.fake.wait_for_call(
        lambda c: c.path.startswith("/channels/") and c.status == 200
    )
    assert sent.json["embeds"][0]["title"].startswith("E11.9")
    statuses = [c.status for c in bot.fake.calls if c.path.startswith("/channels/")]
    assert statuses == [429, 200]


async def test_rate_limited_callback_is_retried(bot: Harness) -> None:
    bot.fake.fail_next(r"/callback$", 429)
    payload = bot.fake.slash_payload("E11.9")
    await bot.fake.dispatch("INTERACTION_CREATE", payload)
    answer = await bot.fake.wait_for_call(
        lambda c: c.path.startswith(f"/interactions/{payload['id']}/") and c.status == 200
    )
    assert answer.message()["embeds"][0]["title"].startswith("E11.9")


async def test_reconnect_after_gateway_drop(bot: Harness) -> None:
    await bot.fake.drop_connections()
    await bot.fake.wait_identified()
    call = await bot.slash("E11.9")
    assert call.message()["embeds"][0]["title"].startswith("E11.9")


@pytest.mark.slow
async def test_sharded_client(fake: FakeDiscord, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, fake, discord_shard_count=2)
    async with start_bot(fake, settings) as bot:
        assert isinstance(bot.adapter.client, discord.AutoShardedClient)
        await fake.wait_identified(count=2)
        assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 2), (1, 2)]
        call = await bot.slash("E11.9")
        assert call.message()["embeds"][0]["title"].startswith("E11.9")


# ---------------------------------------------------------------------- command sync


async def test_sync_commands_global_and_guild(fake: FakeDiscord, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, fake)
    assert await sync_commands(settings) == ["code"]
    put = next(c for c in fake.calls if c.method == "PUT")
    assert put.path == f"/applications/{fake.app_id}/commands"
    (command,) = put.json
    assert command["name"] == "code"
    (option,) = command["options"]
    assert option["name"] == "query" and option["autocomplete"] is True and option["required"]
    assert await sync_commands(settings, guild_id=int(fake.guild_ids[0])) == ["code"]
    assert fake.calls[-1].path == f"/applications/{fake.app_id}/guilds/{fake.guild_ids[0]}/commands"
    assert Route.BASE == ORIGINAL_BASE


async def test_serve_with_sync_registers_commands(fake: FakeDiscord, tmp_path: Path) -> None:
    async with start_bot(fake, make_settings(tmp_path, fake), sync=True):
        assert any(c.method == "PUT" and c.path.endswith("/commands") for c in fake.calls)


async def test_undelivered_answer_is_refunded(fake: FakeDiscord, tmp_path: Path) -> None:
    """Discord refused the answer: the user was not charged for it (guest plan: 1 lookup)."""
    async with start_bot(fake, make_settings(tmp_path, fake, quota={})) as bot:
        fake.fail_next(r"/callback$", 400, code=50035)
        payload = fake.slash_payload("E11.9")
        await fake.dispatch("INTERACTION_CREATE", payload)
        await fake.wait_for_call(
            lambda c: (
                c.path.startswith(f"/interactions/{payload['id']}/")
                and "couldn't deliver" in embed_text(c.message())
            )
        )
        answered = (await bot.slash("I10")).message()  # the one lookup is still there
        assert answered["embeds"][0]["title"].startswith("I10")
