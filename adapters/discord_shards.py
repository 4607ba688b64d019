"""Discord shards split across machines: which client to build, and when each shard identifies.

Discord routes a guild's events to shard `(guild_id >> 22) % shard_count` (DMs to shard 0).
A bot run on several machines gives each process `DISCORD_SHARD_IDS` (its part of
`DISCORD_SHARD_COUNT`), and discord.py's `AutoShardedClient(shard_ids=…, shard_count=…)`
then opens gateway sessions for those shards only.

Session starts are rate limited by Discord: one IDENTIFY per 5 s per bucket, where the
bucket of a shard is `shard_id % max_concurrency` (`session_start_limit.max_concurrency`
of `GET /gateway/bot`: 1 for most bots, 16+ for large ones). discord.py's default
`before_identify_hook` sleeps 5 s before every shard but the first, whatever the bucket;
`IdentifyGate` waits only when the shard's own bucket identified less than 5 s ago, so a
large bot brings its shards up at once, as discord.py's documentation suggests for manual
shard ranges. The gate is per process: two machines starting at the same instant may still
collide in one bucket, which Discord answers with an invalid session (op 9) and discord.py
retries after this gate, so the cost is a few seconds, never a lost shard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import discord

log = logging.getLogger(__name__)

IDENTIFY_INTERVAL_SECONDS = 5.0  # Discord: one IDENTIFY per bucket per 5 seconds


class IdentifyGate:
    """Spaces IDENTIFYs per rate-limit bucket (`shard_id % max_concurrency`)."""

    def __init__(
        self,
        max_concurrency: int = 1,
        *,
        interval: float = IDENTIFY_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.max_concurrency = max(1, max_concurrency)
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def bucket(self, shard_id: int | None) -> int:
        """The rate-limit bucket of a shard (an unsharded client is shard 0)."""
        return (shard_id or 0) % self.max_concurrency

    async def wait(self, shard_id: int | None) -> float:
        """Wait until `shard_id` may identify; returns the seconds waited."""
        bucket = self.bucket(shard_id)
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        async with lock:  # shards of one bucket go one after another
            waited = 0.0
            last = self._last.get(bucket)
            if last is not None:
                waited = max(0.0, last + self.interval - self._clock())
                if waited:
                    await self._sleep(waited)
            self._last[bucket] = self._clock()
            return waited


class ShardedClient(discord.AutoShardedClient):
    """`AutoShardedClient` whose shards identify as fast as Discord's buckets allow."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.identify_gate = IdentifyGate()

    async def learn_session_limits(self) -> None:
        """Ask Discord for max_concurrency (from setup_hook: logged in, not yet connected)."""
        try:
            limits = await self.fetch_session_start_limits()
        except discord.DiscordException as error:
            log.warning("discord: no session start limits (%s); 1 identify per 5 s", error)
            return
        self.identify_gate.max_concurrency = max(1, int(limits.max_concurrency))
        ids = self.shard_ids if self.shard_ids is not None else f"0-{(self.shard_count or 1) - 1}"
        log.info(
            "discord: shards %s of %s, %d identify bucket(s), %d session starts left",
            ids,
            self.shard_count,
            self.identify_gate.max_concurrency,
            limits.remaining,
        )

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Wait for the shard's bucket only (discord.py's default sleeps 5 s every time)."""
        waited = await self.identify_gate.wait(shard_id)
        if waited:
            log.info("discord: shard %s waited %.1f s to identify", shard_id, waited)


def make_client(
    shard_count: int | None, shard_ids: tuple[int, ...], **options: Any
) -> discord.Client:
    """A plain client, or a sharded one running every shard of `shard_count` or `shard_ids`."""
    if not shard_count:
        return discord.Client(**options)
    ids = list(shard_ids) if shard_ids else None  # None: discord.py runs range(shard_count)
    return ShardedClient(shard_count=shard_count, shard_ids=ids, **options)
