"""Discord shards across machines: `DISCORD_SHARD_IDS` + `DISCORD_SHARD_COUNT`.

Two "machines" (two real discord.py clients, each with its own LookupService over one
shared state database) run shards 0-3 and 4-7 of 8 against one fake gateway, which routes
each guild's events to its shard as Discord does. The configuration rules and the identify
gate (Discord's session-start buckets) are tested directly.
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
from adapters.discord_shards import IdentifyGate, ShardedClient
from bot.app import open_service
from bot.config import DEFAULT_CODES_DB, ConfigError, Settings, parse_shard_ids
from tests.fakes.fake_discord import FakeDiscord, guild_on_shard, shard_of

CODES_DB = Path(os.environ.get("CODEBOT_CODES_DB") or DEFAULT_CODES_DB)
SHARD_COUNT = 8
MACHINES = {"a": "0-3", "b": "4-7"}


# ---------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-3", (0, 1, 2, 3)),
        ("4,5,6,7", (4, 5, 6, 7)),
        (" 6-7, 0-1 ", (0, 1, 6, 7)),
        ("5", (5,)),
        ("", ()),
    ],
)
def test_shard_ids_parse(text: str, expected: tuple[int, ...]) -> None:
    assert parse_shard_ids(text, SHARD_COUNT) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0-8", "DISCORD_SHARD_COUNT is 8"),
        ("3-1", "backwards"),
        ("0-3,3", "shard 3 twice"),
        ("a-b", "must look like"),
        ("-1", "must look like"),
        ("0-3;4", "must look like"),
        ("1" * 500, "DISCORD_SHARD_COUNT is 8"),
    ],
)
def test_shard_ids_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_shard_ids(text, SHARD_COUNT)


def test_shard_settings_from_env() -> None:
    settings = Settings.from_env({"DISCORD_SHARD_COUNT": "8", "DISCORD_SHARD_IDS": "4-7"})
    assert settings.discord_shard_count == 8
    assert settings.discord_shard_ids == (4, 5, 6, 7)
    with pytest.raises(ConfigError, match="needs DISCORD_SHARD_COUNT"):
        Settings.from_env({"DISCORD_SHARD_IDS": "0-3"})
    with pytest.raises(ConfigError, match="at least 1"):
        Settings.from_env({"DISCORD_SHARD_COUNT": "0"})
    # From codebot.toml too; the environment wins.
    toml = {"discord_shard_count": 4, "discord_shard_ids": "0-1"}
    assert Settings.from_env({}, toml).discord_shard_ids == (0, 1)
    assert Settings.from_env({"DISCORD_SHARD_IDS": "2-3"}, toml).discord_shard_ids == (2, 3)


# ---------------------------------------------------------------------- identify gate


async def test_identify_gate_waits_only_for_the_same_bucket() -> None:
    loop = asyncio.get_running_loop()
    gate = IdentifyGate(max_concurrency=2, interval=0.3)
    started = loop.time()
    assert await gate.wait(0) == 0.0  # bucket 0, first
    assert await gate.wait(1) == 0.0  # bucket 1: no wait
    waited = await gate.wait(2)  # bucket 0 again, within the interval
    assert 0.0 < waited <= 0.3
    assert loop.time() - started >= 0.25
    # Shards of one bucket asking at once are spaced one interval apart.
    single = IdentifyGate(max_concurrency=1, interval=0.2)
    waits = await asyncio.gather(*(single.wait(shard) for shard in (4, 5, 6)))
    assert sorted(w > 0 for w in waits) == [False, True, True]
    assert single.bucket(None) == 0 and single.bucket(7) == 0 and gate.bucket(7) == 1


# ---------------------------------------------------------------------- two machines


def machine_settings(tmp_path: Path, fake: FakeDiscord, shard_ids: str) -> Settings:
    """One machine's settings: its shards of 8, the fake, the state DB all machines share."""
    return Settings.from_env(
        {
            "CODEBOT_CODES_DB": str(CODES_DB),
            "CODEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/state.sqlite",
            "DISCORD_TOKEN": "fake-token",
            "DISCORD_API_URL": fake.api_url,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
            "DISCORD_SHARD_COUNT": str(SHARD_COUNT),
            "DISCORD_SHARD_IDS": shard_ids,
        },
        {"quota": {"guest_plan": "unlimited"}},
    )


@contextlib.asynccontextmanager
async def machines(tmp_path: Path, fake: FakeDiscord) -> AsyncIterator[dict[str, DiscordAdapter]]:
    """Both machines running against `fake`, every shard identified."""
    async with contextlib.AsyncExitStack() as stack:
        adapters: dict[str, DiscordAdapter] = {}
        for name, shard_ids in MACHINES.items():
            settings = machine_settings(tmp_path, fake, shard_ids)
            service = await stack.enter_async_context(open_service(settings))
            adapters[name] = await stack.enter_async_context(running_bot(settings, service))
        await fake.wait_identified(count=SHARD_COUNT, timeout=30)
        yield adapters


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    guilds = tuple(guild_on_shard(shard, SHARD_COUNT) for shard in range(SHARD_COUNT))
    # A large bot's session start limit: 16 identify buckets.
    async with FakeDiscord(guild_ids=guilds, max_concurrency=16) as server:
        yield server


@pytest.mark.skipif(not CODES_DB.is_file(), reason=f"code DB {CODES_DB} not built")
async def test_two_machines_each_run_only_their_shards(fake: FakeDiscord, tmp_path: Path) -> None:
    async with machines(tmp_path, fake) as running:
        identified = sorted(tuple(i["shard"]) for i in fake.identifies)
        assert identified == [(shard, SHARD_COUNT) for shard in range(SHARD_COUNT)]
        for name, adapter in running.items():
            client = adapter.client
            assert isinstance(client, ShardedClient)
            wanted = set(parse_shard_ids(MACHINES[name], SHARD_COUNT))
            assert set(client.shards) == wanted
            assert client.identify_gate.max_concurrency == 16  # learned from /gateway/bot
            # Each machine sees only the guilds of its shards.
            await wait_for(lambda c=client, w=wanted: len(c.guilds) == len(w))
            assert {shard_of(g.id, SHARD_COUNT) for g in client.guilds} == wanted

        # A slash command in a guild on shard 5 is answered once, by machine b.
        guild = fake.guild_ids[5]
        answers = await answer_for(fake, fake.slash_payload("E11.9", guild_id=guild))
        assert len(answers) == 1
        assert answers[0].message()["embeds"][0]["title"].startswith("E11.9")
        # A DM belongs to shard 0: machine a answers it.
        dm = await answer_for(fake, fake.slash_payload("I10", guild_id=None))
        assert len(dm) == 1 and dm[0].message()["embeds"][0]["title"].startswith("I10")
        # Every shard's guild gets exactly one answer.
        for shard in range(SHARD_COUNT):
            answered = await answer_for(
                fake, fake.slash_payload("A0425", guild_id=fake.guild_ids[shard])
            )
            assert len(answered) == 1, shard


async def answer_for(fake: FakeDiscord, payload: dict[str, Any]) -> list[Any]:
    """Dispatch an interaction; every callback made for it once things are quiet."""
    start = len(fake.calls)
    prefix = f"/interactions/{payload['id']}/"
    await fake.dispatch("INTERACTION_CREATE", payload)
    await fake.wait_for_call(lambda c: c.path.startswith(prefix), after=start)
    await asyncio.sleep(0.3)  # a second machine answering too would have done so by now
    return [c for c in fake.calls[start:] if c.path.startswith(prefix)]


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Poll `condition` until true (client-side state the fake cannot observe)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)
