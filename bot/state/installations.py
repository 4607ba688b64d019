"""Chat-app installations and OAuth states in the state database, on both backends.

A platform app installed by many workspaces (Slack OAuth, `adapters/slack_oauth.py`) keeps
one row per installation in `app_installations`, keyed by (platform, enterprise id, team
id) with '' for "none" (an Enterprise Grid org-wide install has no team; a plain workspace
has no enterprise), and one row per OAuth `state` handed to an installer's browser in
`oauth_states`, good once. Both live in the state database (migration 3,
`app_installations`, of each backend's schema), not in files under `$HOME`, so the OAuth
callback and every later request may land on any replica behind a load balancer.

The installation itself is an opaque JSON object (the adapter's serialisation of its
library's model): this module stores and finds it and knows nothing of Slack. Bot tokens
are in it, so the state database is a secret store (README, Distribution).

The adapter opens its own handle (`open_installations`): the service's store is not
visible to adapters, and these rows are read by bolt's authorize middleware before any
service call. It reuses each backend's connection layer and migrations.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.config import Settings
from bot.state import backend_of

if TYPE_CHECKING:
    import asyncpg

    from bot.state.sqlite_db import Database


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

    async def issue_state(self, state: str, expires_at: float, now: float) -> None:
        """Remember a fresh OAuth state until `expires_at`; drop states expired by `now`."""
        ...

    async def consume_state(self, state: str, now: float) -> bool:
        """True exactly once for a state issued and not yet expired; it is gone afterwards."""
        ...

    async def close(self) -> None:
        """Release the connection (idempotent)."""
        ...


def _decode(text: str) -> dict[str, Any] | None:
    found = json.loads(text)
    return found if isinstance(found, dict) else None


class SqliteInstallations:
    """`Installations` over the SQLite state file's `Database` (bot/state/sqlite_db.py)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def save_installation(
        self, key: InstallationKey, installation: Mapping[str, Any], installed_at: float
    ) -> None:
        """Insert or replace the installation at `key`."""
        await self.db.execute(
            "INSERT INTO app_installations"
            " (platform, enterprise_id, team_id, installation, installed_at)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (platform, enterprise_id, team_id) DO UPDATE SET"
            " installation = excluded.installation, installed_at = excluded.installed_at",
            (key.platform, key.enterprise_id, key.team_id, json.dumps(installation), installed_at),
        )

    async def find_installation(self, key: InstallationKey) -> dict[str, Any] | None:
        """The stored installation at `key`, or None."""
        row = await self.db.fetchone(
            "SELECT installation FROM app_installations"
            " WHERE platform = ? AND enterprise_id = ? AND team_id = ?",
            (key.platform, key.enterprise_id, key.team_id),
        )
        return None if row is None else _decode(str(row[0]))

    async def delete_installation(self, key: InstallationKey) -> bool:
        """Remove the installation at `key`; True when there was one."""
        deleted = await self.db.execute(
            "DELETE FROM app_installations"
            " WHERE platform = ? AND enterprise_id = ? AND team_id = ?",
            (key.platform, key.enterprise_id, key.team_id),
        )
        return deleted > 0

    async def issue_state(self, state: str, expires_at: float, now: float) -> None:
        """Remember a fresh OAuth state; states that expired are dropped on the way."""
        await self.db.execute("DELETE FROM oauth_states WHERE expires_at <= ?", (now,))
        await self.db.execute(
            "INSERT INTO oauth_states (state, expires_at) VALUES (?, ?)", (state, expires_at)
        )

    async def consume_state(self, state: str, now: float) -> bool:
        """One DELETE: of two callbacks with one state, only one gets True."""
        deleted = await self.db.execute(
            "DELETE FROM oauth_states WHERE state = ? AND expires_at > ?", (state, now)
        )
        return deleted > 0

    async def close(self) -> None:
        """Close the connection."""
        await self.db.close()


class PostgresInstallations:
    """`Installations` over an asyncpg pool of the PostgreSQL state database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save_installation(
        self, key: InstallationKey, installation: Mapping[str, Any], installed_at: float
    ) -> None:
        """Insert or replace the installation at `key`."""
        await self.pool.execute(
            "INSERT INTO app_installations"
            " (platform, enterprise_id, team_id, installation, installed_at)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (platform, enterprise_id, team_id) DO UPDATE SET"
            " installation = excluded.installation, installed_at = excluded.installed_at",
            key.platform,
            key.enterprise_id,
            key.team_id,
            json.dumps(installation),
            installed_at,
        )

    async def find_installation(self, key: InstallationKey) -> dict[str, Any] | None:
        """The stored installation at `key`, or None."""
        text = await self.pool.fetchval(
            "SELECT installation FROM app_installations"
            " WHERE platform = $1 AND enterprise_id = $2 AND team_id = $3",
            key.platform,
            key.enterprise_id,
            key.team_id,
        )
        return None if text is None else _decode(str(text))

    async def delete_installation(self, key: InstallationKey) -> bool:
        """Remove the installation at `key`; True when there was one."""
        status = await self.pool.execute(
            "DELETE FROM app_installations"
            " WHERE platform = $1 AND enterprise_id = $2 AND team_id = $3",
            key.platform,
            key.enterprise_id,
            key.team_id,
        )
        return _count(status) > 0

    async def issue_state(self, state: str, expires_at: float, now: float) -> None:
        """Remember a fresh OAuth state; states that expired are dropped on the way."""
        await self.pool.execute("DELETE FROM oauth_states WHERE expires_at <= $1", now)
        await self.pool.execute(
            "INSERT INTO oauth_states (state, expires_at) VALUES ($1, $2)", state, expires_at
        )

    async def consume_state(self, state: str, now: float) -> bool:
        """One DELETE: of two callbacks with one state, only one gets True."""
        status = await self.pool.execute(
            "DELETE FROM oauth_states WHERE state = $1 AND expires_at > $2", state, now
        )
        return _count(status) > 0

    async def close(self) -> None:
        """Close the pool."""
        await self.pool.close()


def _count(status: str) -> int:
    """Rows affected, from asyncpg's command status ("DELETE 1")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def connect_installations(settings: Settings) -> Installations:
    """Open (create, migrate) the configured state database for installations."""
    if backend_of(settings.database_url) == "sqlite":
        from bot.state.sqlite import SqliteStore

        return SqliteInstallations((await SqliteStore.open(settings.state_path)).db)
    from bot.state.postgres import PostgresStore

    return PostgresInstallations((await PostgresStore.open(settings)).pool)


class LazyInstallations:
    """`Installations` that connects on first use (adapters are built outside a loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._opened: Installations | None = None
        self._opening = asyncio.Lock()

    async def _store(self) -> Installations:
        if self._opened is None:
            async with self._opening:
                if self._opened is None:
                    self._opened = await connect_installations(self.settings)
        return self._opened

    async def save_installation(
        self, key: InstallationKey, installation: Mapping[str, Any], installed_at: float
    ) -> None:
        """See `Installations.save_installation`."""
        await (await self._store()).save_installation(key, installation, installed_at)

    async def find_installation(self, key: InstallationKey) -> dict[str, Any] | None:
        """See `Installations.find_installation`."""
        return await (await self._store()).find_installation(key)

    async def delete_installation(self, key: InstallationKey) -> bool:
        """See `Installations.delete_installation`."""
        return await (await self._store()).delete_installation(key)

    async def issue_state(self, state: str, expires_at: float, now: float) -> None:
        """See `Installations.issue_state`."""
        await (await self._store()).issue_state(state, expires_at, now)

    async def consume_state(self, state: str, now: float) -> bool:
        """See `Installations.consume_state`."""
        return await (await self._store()).consume_state(state, now)

    async def close(self) -> None:
        """Close the connection if it was opened."""
        if self._opened is not None:
            opened, self._opened = self._opened, None
            await opened.close()


def open_installations(settings: Settings) -> Installations:
    """The configured state database's `Installations`, connecting on first use."""
    return LazyInstallations(settings)
