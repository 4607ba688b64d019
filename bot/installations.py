"""Chat-app installations and OAuth states in the state database (any replica can read them).

A platform app installed by many workspaces (Slack OAuth, `adapters/slack_oauth.py`) keeps
one row per installation, keyed by (enterprise id, team id) with '' for "none" (an
Enterprise Grid org-wide install has no team; a plain workspace has no enterprise), and a
one-use row per OAuth `state` handed to an installer's browser. Both live in the state
database, not in files under `$HOME`, so the OAuth callback and every later request may land
on any replica behind a load balancer.

The installation itself is an opaque JSON object (the adapter's serialisation of its
library's installation model): this module stores and finds it, and knows nothing of Slack.
Bot tokens are in it, so the state database is a secret store (see README, Distribution).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from bot.config import Settings

BUSY_TIMEOUT_MS = 10_000

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS app_installations (
    platform      TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,  -- '' when none
    team_id       TEXT NOT NULL,  -- '' for an org-wide install
    installation  TEXT NOT NULL,  -- JSON, written by the platform adapter
    installed_at  REAL NOT NULL,
    PRIMARY KEY (platform, enterprise_id, team_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS oauth_states (
    state      TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class InstallationKey:
    """Which installation: ('', 'T1') a workspace, ('E1', '') an org, ('E1', 'T1') both."""

    platform: str
    enterprise_id: str
    team_id: str


class Installations(Protocol):
    """Installations and OAuth states, on whatever backend holds the state database."""

    async def save_installation(
        self, key: InstallationKey, installation: Mapping[str, Any], installed_at: float
    ) -> None:
        """Insert or replace the installation at `key` (a reinstall replaces the token)."""
        ...

    async def find_installation(self, key: InstallationKey) -> dict[str, Any] | None:
        """The stored installation at `key`, or None."""
        ...

    async def delete_installation(self, key: InstallationKey) -> bool:
        """Remove the installation at `key`; True when there was one."""
        ...

    async def issue_state(self, state: str, expires_at: float) -> None:
        """Remember a fresh OAuth state until `expires_at` (epoch seconds)."""
        ...

    async def consume_state(self, state: str, now: float) -> bool:
        """True exactly once for a state issued and not yet expired; it is gone afterwards."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class SqliteInstallations:
    """`Installations` in the SQLite state file (its own connection, opened on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._opening = asyncio.Lock()

    async def _connection(self) -> aiosqlite.Connection:
        if self._conn is not None:
            return self._conn
        async with self._opening:
            if self._conn is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = await aiosqlite.connect(str(self.path), isolation_level=None)
                await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                await conn.execute("PRAGMA journal_mode = WAL")
                await conn.executescript(SQLITE_SCHEMA)
                self._conn = conn
        return self._conn

    async def save_installation(
        self, key: InstallationKey, installation: Mapping[str, Any], installed_at: float
    ) -> None:
        """Insert or replace the installation at `key`."""
        conn = await self._connection()
        await conn.execute(
            "INSERT INTO app_installations"
            " (platform, enterprise_id, team_id, installation, installed_at)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (platform, enterprise_id, team_id) DO UPDATE SET"
            " installation = excluded.installation, installed_at = excluded.installed_at",
            (key.platform, key.enterprise_id, key.team_id, json.dumps(installation), installed_at),
        )

    async def find_installation(self, key: InstallationKey) -> dict[str, Any] | None:
        """The stored installation at `key`, or None."""
        conn = await self._connection()
        async with conn.execute(
            "SELECT installation FROM app_installations"
            " WHERE platform = ? AND enterprise_id = ? AND team_id = ?",
            (key.platform, key.enterprise_id, key.team_id),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        found = json.loads(row[0])
        return found if isinstance(found, dict) else None

    async def delete_installation(self, key: InstallationKey) -> bool:
        """Remove the installation at `key`; True when there was one."""
        conn = await self._connection()
        cursor = await conn.execute(
            "DELETE FROM app_installations"
            " WHERE platform = ? AND enterprise_id = ? AND team_id = ?",
            (key.platform, key.enterprise_id, key.team_id),
        )
        return cursor.rowcount > 0

    async def issue_state(self, state: str, expires_at: float) -> None:
        """Remember a fresh OAuth state; states that expired are dropped on the way."""
        conn = await self._connection()
        await conn.execute("DELETE FROM oauth_states WHERE expires_at <= ?", (time.time(),))
        await conn.execute(
            "INSERT INTO oauth_states (state, expires_at) VALUES (?, ?)", (state, expires_at)
        )

    async def consume_state(self, state: str, now: float) -> bool:
        """One atomic DELETE: of two callbacks with one state, only one gets True."""
        conn = await self._connection()
        cursor = await conn.execute(
            "DELETE FROM oauth_states WHERE state = ? AND expires_at > ?", (state, now)
        )
        return cursor.rowcount > 0

    async def close(self) -> None:
        """Close the connection (a later call opens it again)."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def open_installations(settings: Settings) -> Installations:
    """The `Installations` of the configured state database (connects on first use)."""
    return SqliteInstallations(settings.state_path)
