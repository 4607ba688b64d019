"""Numbered migrations tracked in `schema_migrations` (SQLite here; PostgreSQL in
tests/test_postgres_store.py): applied once, in order, and a v1 file is adopted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.state.migrations import Migration, pending
from bot.state.policy import AccountKey
from bot.state.sqlite import SqliteStore
from bot.state.sqlite_db import _split_script
from bot.state.sqlite_schema import MIGRATIONS


def test_numbering_gaps_are_refused() -> None:
    with pytest.raises(ValueError, match="expected 2"):
        pending((Migration(1, "a", ""), Migration(3, "c", "")), set())
    assert [m.version for m in pending(MIGRATIONS, {1})] == list(range(2, len(MIGRATIONS) + 1))


async def test_fresh_file_records_every_migration(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "state.sqlite")
    await store.close()
    store = await SqliteStore.open(tmp_path / "state.sqlite")  # reopening applies nothing
    rows = await store.db.fetchall("SELECT version, name FROM schema_migrations ORDER BY 1")
    await store.close()
    assert [tuple(row) for row in rows] == [(m.version, m.name) for m in MIGRATIONS]


async def test_a_v1_file_from_before_the_table_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as connection:
        for statement in _split_script(MIGRATIONS[0].sql):
            connection.execute(statement)
        connection.execute(
            "INSERT INTO teams (platform, tenant, plan, updated_at) VALUES ('slack', 'T1', "
            "'pro', 'x')"
        )
        connection.execute("PRAGMA user_version = 1")
    connection.close()
    store = await SqliteStore.open(path)
    try:
        versions = await store.db.fetchall("SELECT version FROM schema_migrations ORDER BY 1")
        assert [row[0] for row in versions] == [m.version for m in MIGRATIONS]
        assert await store.account_plans(AccountKey("slack", "T1", "U1")) == (
            None,
            "pro",
        )  # data kept
        assert await store.db.fetchall("SELECT * FROM processed_requests") == []
    finally:
        await store.close()
