"""Installations and OAuth states in the state database, on both backends.

Each test runs against a fresh SQLite file and a fresh database on the real PostgreSQL
server the test session starts (tests/conftest.py `state_url`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.config import Settings
from bot.state.installations import InstallationKey, Installations, connect_installations

WORKSPACE = InstallationKey("slack", "", "T1")
GRID_WORKSPACE = InstallationKey("slack", "E1", "T1")
ORG = InstallationKey("slack", "E1", "")


@pytest.fixture
async def records(state_url: str) -> AsyncIterator[Installations]:
    opened = await connect_installations(Settings(database_url=state_url))
    yield opened
    await opened.close()


async def test_save_find_replace_delete(records: Installations) -> None:
    assert await records.find_installation(WORKSPACE) is None
    await records.save_installation(WORKSPACE, {"bot_token": "xoxb-1", "n": [1, 2]}, 100.0)
    await records.save_installation(ORG, {"bot_token": "xoxb-org"}, 101.0)
    assert await records.find_installation(WORKSPACE) == {"bot_token": "xoxb-1", "n": [1, 2]}
    # The same team inside an org is another installation; the org's is separate too.
    assert await records.find_installation(GRID_WORKSPACE) is None
    assert await records.find_installation(ORG) == {"bot_token": "xoxb-org"}
    # A reinstall replaces the token.
    await records.save_installation(WORKSPACE, {"bot_token": "xoxb-2"}, 200.0)
    assert await records.find_installation(WORKSPACE) == {"bot_token": "xoxb-2"}
    assert await records.delete_installation(WORKSPACE) is True
    assert await records.delete_installation(WORKSPACE) is False
    assert await records.find_installation(WORKSPACE) is None
    assert await records.find_installation(ORG) == {"bot_token": "xoxb-org"}
    # Platforms do not see each other's rows.
    assert await records.find_installation(InstallationKey("discord", "E1", "")) is None


async def test_a_state_is_good_once(records: Installations) -> None:
    now = time.time()
    await records.issue_state("s-1", now + 600, now)
    assert await records.consume_state("s-1", now) is True
    assert await records.consume_state("s-1", now) is False
    assert await records.consume_state("never-issued", now) is False


async def test_an_expired_state_is_refused_and_dropped(records: Installations) -> None:
    now = time.time()
    await records.issue_state("old", now + 10, now)
    assert await records.consume_state("old", now + 11) is False
    await records.issue_state("fresh", now + 30, now + 20)  # drops "old" on the way
    assert await records.consume_state("old", now) is False
    assert await records.consume_state("fresh", now + 21) is True


async def test_concurrent_callbacks_consume_a_state_once(state_url: str) -> None:
    """Two replicas (two connections) race for one state: exactly one wins."""
    settings = Settings(database_url=state_url)
    first, second = await connect_installations(settings), await connect_installations(settings)
    try:
        now = time.time()
        for n in range(5):
            await first.issue_state(f"race-{n}", now + 600, now)
        attempts = [
            replica.consume_state(f"race-{n}", now)
            for n in range(5)
            for replica in (first, second, first, second)
        ]
        won = await asyncio.gather(*attempts)
        assert [sum(won[n * 4 : n * 4 + 4]) for n in range(5)] == [1] * 5
    finally:
        await first.close()
        await second.close()
