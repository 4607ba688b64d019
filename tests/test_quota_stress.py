"""Several processes charging one team pool on one state database never overspend.

Both backends: a SQLite file and a PostgreSQL database (4 processes x 2,500 requests, the
full size, on both). Also: 4 processes opening a fresh database at once apply each
migration exactly once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from typing import Any

from benchmarks.quota_bench import stress
from bot.config import Settings
from bot.state import open_store
from bot.state.postgres_schema import MIGRATIONS as POSTGRES_MIGRATIONS
from bot.state.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS


def test_four_processes_share_one_team_quota_exactly(state_url: str) -> None:
    result = stress(processes=4, per_process=2500, quota=5000, url=state_url)
    assert result["allowed"] == 5000
    assert result["refused"] == 5000
    assert result["replays_not_charged"] == 4 * 250
    assert result["ledger_rows"] == 10_000
    assert result["ledger_allowed_cost"] == 5000
    assert result["team_counter"] == 5000
    assert result["exact"]


def _open_at_once(url: str, barrier: Any, results: Any) -> None:
    async def scenario() -> list[int]:
        barrier.wait()
        store = await open_store(Settings(database_url=url))
        await store.close()
        return [1]

    try:
        results.put(asyncio.run(scenario()))
    except BaseException as error:
        results.put(repr(error))
        raise


def test_migration_race_of_four_processes(state_url: str, backend: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    workers = [
        context.Process(target=_open_at_once, args=(state_url, barrier, results)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert outcomes == [[1]] * 4, outcomes
    migrations = SQLITE_MIGRATIONS if backend == "sqlite" else POSTGRES_MIGRATIONS
    assert asyncio.run(_applied(state_url)) == [(m.version, m.name) for m in migrations]


async def _applied(url: str) -> list[tuple[int, str]]:
    store = await open_store(Settings(database_url=url))
    try:
        return await store.applied_migrations()
    finally:
        await store.close()
