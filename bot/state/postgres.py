"""`PostgresStore`: the `StateStore` on PostgreSQL (asyncpg), for several replicas.

Selected by `CODEBOT_DATABASE_URL=postgresql://user:password@host:5432/dbname`. Every
replica (Slack HTTP behind a load balancer, Discord shards on several hosts) opens its
own asyncpg pool on the same database; no state lives in a process.

- Exact charging: `codebot_charge` (see `bot/state/postgres_schema.py`) serialises the
  charges of one tenant with a transaction-level advisory lock and charges in one call;
  replays return the stored row without taking the lock; a refund is one DELETE whose
  trigger gives the cost back.
- Plans across replicas: `install_plans` stores this replica's plan table under its hash
  (`plan_limits`), and every charge names that hash: no temp tables, and replicas on
  different configs during a rolling deploy never charge against each other's limits.
- Migrations: applied once, in one transaction holding a transaction-level advisory lock
  (`MIGRATION_LOCK`), after re-reading `schema_migrations` under it; N replicas starting
  together wait for the first and then find nothing to do.
- Session settings go in as asyncpg `server_settings` (sent at connect), because the
  pool's connection reset drops anything set with `SET`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bot.codes.normalize import normalize_code
from bot.config import Settings
from bot.state.migrations import pending
from bot.state.notes import match_notes
from bot.state.plans import Period, PlanTable
from bot.state.policy import (
    DELETED_USER,
    TEAM_POOL,
    AccountKey,
    ChargeRow,
    LookupRow,
    NoteChange,
)
from bot.state.postgres_schema import MIGRATIONS
from bot.state.store import Delivery, HistoryRow, NoteKeys, Notes

logger = logging.getLogger(__name__)

MIGRATION_LOCK = 7_411_000_001  # pg_advisory_xact_lock key of schema migrations
# Defaults of the session settings; `database_server_settings` in codebot.toml adds or
# overrides (values are strings, as PostgreSQL takes them).
DEFAULT_SERVER_SETTINGS: Mapping[str, str] = {
    "application_name": "codebot",
    "statement_timeout": "10000",  # ms: no request waits forever on a stuck lock
    "idle_in_transaction_session_timeout": "30000",
}
TEAM_TABLES = ("teams", "users", "usage", "charges", "grants", "lookups", "notes")
_ID_TABLES = frozenset({"grants", "lookups"})


def plan_set_hash(plans: PlanTable) -> str:
    """A stable name for a plan table: the hash of its limits and periods."""
    canonical = sorted(
        (plan.name, plan.sql_limit, plan.period is Period.MONTHLY) for plan in plans.plans.values()
    )
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()[:16]


def public_url(url: str) -> str:
    """The database URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{parts.path}"


class PostgresStore:
    """The `StateStore` over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self.pool = pool
        self.description = f"state database {public_url(url)}"
        self._plan_hash = ""

    @classmethod
    async def open(cls, settings: Settings) -> PostgresStore:
        """Connect a pool of `settings.database_pool_size` and apply pending migrations."""
        server_settings = dict(DEFAULT_SERVER_SETTINGS) | dict(settings.database_server_settings)
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=1,
            max_size=settings.database_pool_size,
            server_settings=server_settings,
        )
        store = cls(pool, settings.database_url)
        try:
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def _migrate(self) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            applied = {
                int(row[0])
                for row in await connection.fetch("SELECT version FROM schema_migrations")
            }
            for migration in pending(MIGRATIONS, applied):
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
                logger.info(
                    "%s: migration %d (%s) applied",
                    self.description,
                    migration.version,
                    migration.name,
                )

    async def install_plans(self, plans: PlanTable) -> None:
        """Store this config's plan set under its hash (idempotent; other sets stay)."""
        plan_hash = plan_set_hash(plans)
        await self.pool.executemany(
            "INSERT INTO plan_limits (config_hash, name, lim, monthly) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (config_hash, name) DO NOTHING",
            [
                (plan_hash, plan.name, plan.sql_limit, plan.period is Period.MONTHLY)
                for plan in plans.plans.values()
            ],
        )
        self._plan_hash = plan_hash

    # ------------------------------------------------------------------ charging

    async def charge(
        self,
        key: AccountKey,
        request_id: str,
        cost: int,
        *,
        guest_plan: str,
        month: str,
        now: str,
        note_keys: NoteKeys = (),
    ) -> tuple[ChargeRow, Notes | BaseException | None]:
        """`codebot_charge` (exact under the tenant's lock), then the notes, on one connection."""
        if not self._plan_hash:
            raise RuntimeError("install_plans() must run before charge()")
        async with self.pool.acquire() as connection:
            row = await connection.fetchrow(
                "SELECT * FROM codebot_charge($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                key.platform,
                key.tenant,
                key.user,
                request_id,
                cost,
                guest_plan,
                month,
                now,
                self._plan_hash,
            )
            charge = ChargeRow(
                bool(row["allowed"]),
                row["pool_user"],
                row["plan"],
                row["team_plan"],
                int(row["remaining"]),
                row["created_at"],
                bool(row["replayed"]),
            )
            extra: Notes | BaseException | None = None
            if note_keys and charge.allowed:
                try:
                    extra = await _read_notes(connection, key.platform, key.tenant, note_keys)
                except Exception as error:  # reported to the caller, never undoes the charge
                    extra = error
        return charge, extra

    async def refund(self, key: AccountKey, request_id: str) -> bool:
        """One DELETE; the trigger gives the cost back to the pool that paid."""
        status = await self.pool.execute(
            "DELETE FROM charges WHERE platform = $1 AND request_id = $2 AND tenant = $3 "
            "AND user_id = $4",
            key.platform,
            request_id,
            key.tenant,
            key.user,
        )
        return _count(status) > 0

    # ------------------------------------------------------------------ accounts

    async def account_plans(self, key: AccountKey) -> tuple[str | None, str | None]:
        """(user plan, team plan) names as stored."""
        row = await self.pool.fetchrow(
            "SELECT (SELECT plan FROM users WHERE platform = $1 AND tenant = $2 "
            "AND user_id = $3), (SELECT plan FROM teams WHERE platform = $1 AND tenant = $2)",
            *key,
        )
        return (row[0], row[1]) if row else (None, None)

    async def is_registered(self, key: AccountKey) -> bool:
        """True once the user registered."""
        value = await self.pool.fetchval(
            "SELECT registered_at FROM users WHERE platform = $1 AND tenant = $2 AND user_id = $3",
            *key,
        )
        return value is not None

    async def pool_usage(self, key: AccountKey, pool_user: str, period: str) -> tuple[int, int]:
        """(used, granted) of one pool and period."""
        row = await self.pool.fetchrow(
            "SELECT used, granted FROM usage WHERE platform = $1 AND tenant = $2 "
            "AND user_id = $3 AND period = $4",
            key.platform,
            key.tenant,
            pool_user,
            period,
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def add_grant(
        self, key: AccountKey, pool_user: str, period: str, amount: int, by: str, now: str
    ) -> None:
        """The usage bump and the audit row, in one transaction."""
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO usage (platform, tenant, user_id, period, granted) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (platform, tenant, user_id, period) "
                "DO UPDATE SET granted = usage.granted + excluded.granted",
                key.platform,
                key.tenant,
                pool_user,
                period,
                amount,
            )
            await connection.execute(
                "INSERT INTO grants (platform, tenant, user_id, period, amount, granted_by, "
                "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                key.platform,
                key.tenant,
                pool_user,
                period,
                amount,
                by,
                now,
            )

    async def set_user_plan(self, key: AccountKey, target: str, plan: str, now: str) -> None:
        """Upsert the target user's plan."""
        await self.pool.execute(
            "INSERT INTO users (platform, tenant, user_id, plan, created_at) "
            "VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (platform, tenant, user_id) DO UPDATE SET plan = excluded.plan",
            key.platform,
            key.tenant,
            target,
            plan,
            now,
        )

    async def set_team_plan(self, key: AccountKey, plan: str | None, now: str) -> None:
        """Upsert the tenant's team plan (NULL removes it)."""
        await self.pool.execute(
            "INSERT INTO teams (platform, tenant, plan, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (platform, tenant) DO UPDATE SET plan = excluded.plan, "
            "updated_at = excluded.updated_at",
            key.platform,
            key.tenant,
            plan,
            now,
        )

    async def register(
        self, key: AccountKey, *, guest_plan: str, registered_plan: str, name: str, now: str
    ) -> bool:
        """One statement: insert the user as registered, or upgrade an unregistered guest."""
        status = await self.pool.execute(
            "INSERT INTO users (platform, tenant, user_id, plan, display_name, registered_at, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $6) "
            "ON CONFLICT (platform, tenant, user_id) DO UPDATE SET "
            "plan = CASE WHEN users.plan IS NULL OR users.plan = $7 THEN $4 ELSE users.plan END,"
            " registered_at = $6 WHERE users.registered_at IS NULL",
            *key,
            registered_plan,
            name,
            now,
            guest_plan,
        )
        return _count(status) > 0

    async def save_display_name(self, key: AccountKey, name: str, now: str) -> None:
        """Upsert the user's display name."""
        await self.pool.execute(
            "INSERT INTO users (platform, tenant, user_id, display_name, created_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (platform, tenant, user_id) "
            "DO UPDATE SET display_name = excluded.display_name",
            *key,
            name,
            now,
        )

    # ------------------------------------------------------------------ team data

    async def insert_lookups(self, rows: Sequence[HistoryRow]) -> None:
        """COPY-free batch insert (a hundred rows at most per call)."""
        if not rows:
            return
        await self.pool.executemany(
            "INSERT INTO lookups (platform, tenant, user_id, display_name, system, code, "
            "title, request_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            list(rows),
        )

    async def team_notes(self, platform: str, tenant: str, keys: NoteKeys) -> Notes:
        """The tenant's notes on (system, display code) pairs."""
        if not keys:
            return {}
        async with self.pool.acquire() as connection:
            return await _read_notes(connection, platform, tenant, keys)

    async def change_note(
        self,
        platform: str,
        tenant: str,
        *,
        system: str,
        code_key: str,
        code: str,
        text: str | None,
        author_id: str,
        author_name: str,
        may_override: bool,
        now: str,
    ) -> NoteChange:
        """Read the author FOR UPDATE and write in one transaction.

        A first note on a code races only with another first note: the upsert makes the
        later one an update, which is what the SQLite store decides too.
        """
        where = (platform, tenant, code_key, system)
        async with self.pool.acquire() as connection, connection.transaction():
            author = await connection.fetchval(
                "SELECT author_id FROM notes WHERE platform = $1 AND tenant = $2 "
                "AND code_key = $3 AND system = $4 FOR UPDATE",
                *where,
            )
            if author is not None and author != author_id and not may_override:
                return NoteChange.NOT_AUTHOR
            if text is None:
                if author is None:
                    return NoteChange.NO_NOTE
                await connection.execute(
                    "DELETE FROM notes WHERE platform = $1 AND tenant = $2 AND code_key = $3 "
                    "AND system = $4",
                    *where,
                )
                return NoteChange.REMOVED
            await connection.execute(
                "INSERT INTO notes (platform, tenant, system, code_key, code, text, author_id, "
                "author_name, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                "ON CONFLICT (platform, tenant, code_key, system) DO UPDATE SET "
                "text = excluded.text, code = excluded.code, author_id = excluded.author_id, "
                "author_name = excluded.author_name, updated_at = excluded.updated_at",
                platform,
                tenant,
                system,
                code_key,
                code,
                text,
                author_id,
                author_name,
                now,
            )
        return NoteChange.UPDATED if author is not None else NoteChange.SAVED

    async def recent_lookups(self, platform: str, tenant: str, limit: int) -> list[LookupRow]:
        """Newest first."""
        rows = await self.pool.fetch(
            "SELECT display_name, system, code, title, created_at FROM lookups "
            "WHERE platform = $1 AND tenant = $2 ORDER BY created_at DESC, id DESC LIMIT $3",
            platform,
            tenant,
            limit,
        )
        return [LookupRow(*row) for row in rows]

    async def usage_since(self, platform: str, tenant: str, since: str) -> tuple[int, int]:
        """(lookups charged, distinct users) since `since`."""
        row = await self.pool.fetchrow(
            "SELECT COALESCE(SUM(cost), 0), COUNT(DISTINCT user_id) FROM charges "
            "WHERE platform = $1 AND tenant = $2 AND created_at >= $3 AND allowed = 1",
            platform,
            tenant,
            since,
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def top_codes(
        self, platform: str, tenant: str, since: str, limit: int
    ) -> list[tuple[str, str, str, int]]:
        """Most looked-up codes since `since`."""
        rows = await self.pool.fetch(
            "SELECT system, code, MAX(title), COUNT(*) AS n FROM lookups "
            "WHERE platform = $1 AND tenant = $2 AND created_at >= $3 "
            "GROUP BY system, code ORDER BY n DESC, code LIMIT $4",
            platform,
            tenant,
            since,
            limit,
        )
        return [(row[0], row[1], row[2], int(row[3])) for row in rows]

    async def top_users(
        self, key: AccountKey, since: str, limit: int
    ) -> list[tuple[str, str, int]]:
        """Users by lookups charged since `since`."""
        rows = await self.pool.fetch(
            "SELECT c.user_id, COALESCE(MAX(u.display_name), ''), SUM(c.cost) AS total "
            "FROM charges c LEFT JOIN users u ON u.platform = c.platform "
            "AND u.tenant = c.tenant AND u.user_id = c.user_id "
            "WHERE c.platform = $1 AND c.tenant = $2 AND c.allowed = 1 "
            "AND c.created_at >= $3 GROUP BY c.user_id ORDER BY total DESC, c.user_id "
            "LIMIT $4",
            key.platform,
            key.tenant,
            since,
            limit,
        )
        return [(row[0], row[1], int(row[2])) for row in rows]

    async def ledger_check(self) -> list[tuple[str, str, str, str, int, int]]:
        """Counters that disagree with the ledger."""
        rows = await self.pool.fetch(
            "SELECT * FROM (SELECT u.platform, u.tenant, u.user_id, u.period, u.used, "
            "COALESCE((SELECT SUM(cost) FROM charges c WHERE c.platform = u.platform "
            "AND c.tenant = u.tenant AND c.pool_user = u.user_id AND c.period = u.period "
            "AND c.allowed = 1), 0) AS ledger FROM usage u) AS t WHERE used != ledger"
        )
        return [(r[0], r[1], r[2], r[3], int(r[4]), int(r[5])) for r in rows]

    # ------------------------------------------------------------------ data requests

    async def export_team(self, tenant: str, platform: str | None) -> dict[str, list[Any]]:
        """Every row of `TEAM_TABLES` about the tenant, in insertion order where it has one."""
        data: dict[str, list[Any]] = {}
        for table in TEAM_TABLES:
            sql = f"SELECT * FROM {table} WHERE tenant = $1"
            params: list[str] = [tenant]
            if platform is not None:
                sql += " AND platform = $2"
                params.append(platform)
            if table in _ID_TABLES:
                sql += " ORDER BY id"
            rows = await self.pool.fetch(sql, *params)
            data[table] = [dict(row) for row in rows]
        return data

    async def purge_user(self, user: str, platform: str | None, tenant: str | None) -> int:
        """One transaction; team-pool charges stay, anonymised, so team counts still add up."""
        scope = ""
        params: list[str] = [user]
        if platform is not None:
            params.append(platform)
            scope += f" AND platform = ${len(params)}"
        if tenant is not None:
            params.append(tenant)
            scope += f" AND tenant = ${len(params)}"
        statements = (
            f"DELETE FROM charges WHERE user_id = $1 AND pool_user != '{TEAM_POOL}'{scope}",
            f"UPDATE charges SET user_id = '{DELETED_USER}' WHERE user_id = $1{scope}",
            f"DELETE FROM usage WHERE user_id = $1{scope}",
            f"DELETE FROM grants WHERE user_id = $1{scope}",
            # grants made by the user keep their amount, not the admin's id
            f"UPDATE grants SET granted_by = '{DELETED_USER}' "
            f"WHERE right(granted_by, length($1) + 1) = ':' || $1{scope}",
            f"DELETE FROM lookups WHERE user_id = $1{scope}",
            f"DELETE FROM notes WHERE author_id = $1{scope}",
            f"DELETE FROM processed_requests WHERE user_id = $1{scope}",
            f"DELETE FROM users WHERE user_id = $1{scope}",
        )
        changed = 0
        async with self.pool.acquire() as connection, connection.transaction():
            for statement in statements:
                changed += _count(await connection.execute(statement, *params))
        return changed

    # ------------------------------------------------------------------ processed once

    async def claim_request(
        self, platform: str, request_id: str, tenant: str, user: str, now: str
    ) -> bool:
        """One INSERT; the primary key decides which replica got there first."""
        status = await self.pool.execute(
            "INSERT INTO processed_requests (platform, request_id, tenant, user_id, claimed_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (platform, request_id) DO NOTHING",
            platform,
            request_id,
            tenant,
            user,
            now,
        )
        return _count(status) > 0

    async def record_deliveries(self, deliveries: Sequence[Delivery], now: str) -> None:
        """One batch of upserts."""
        if not deliveries:
            return
        await self.pool.executemany(
            "INSERT INTO processed_requests (platform, request_id, tenant, user_id, "
            "claimed_at, answered_at) VALUES ($1, $2, $3, $4, $5, $5) "
            "ON CONFLICT (platform, request_id) DO UPDATE SET answered_at = excluded.answered_at",
            [(*delivery, now) for delivery in deliveries],
        )

    async def refund_undelivered(self, since: str, before: str) -> int:
        """One DELETE; the refund trigger gives each cost back."""
        status = await self.pool.execute(
            "DELETE FROM charges WHERE allowed = 1 AND created_at >= $1 AND created_at < $2 "
            "AND NOT EXISTS (SELECT 1 FROM processed_requests p WHERE p.platform = "
            "charges.platform AND p.request_id = charges.request_id "
            "AND p.answered_at IS NOT NULL)",
            since,
            before,
        )
        return _count(status)

    async def records_deliveries_since(self) -> str:
        """applied_at of the processed_requests migration, as sortable UTC text."""
        value = await self.pool.fetchval(
            "SELECT to_char(applied_at AT TIME ZONE 'UTC', "
            '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') FROM schema_migrations '
            "WHERE name = 'processed_requests'"
        )
        return str(value or "")

    def storage_problem(self, error: BaseException) -> str | None:
        """Disk full, read-only (a standby or default_transaction_read_only), unreachable."""
        if isinstance(error, asyncpg.DiskFullError):
            return f"{self.description} is full (no space left on the server's disk)"
        if isinstance(error, asyncpg.ReadOnlySQLTransactionError):
            return f"{self.description} is read-only"
        if isinstance(
            error,
            OSError
            | asyncpg.CannotConnectNowError
            | asyncpg.ConnectionDoesNotExistError
            | asyncpg.TooManyConnectionsError
            | asyncpg.InterfaceError,
        ):
            return f"{self.description} cannot be reached"
        return None

    async def applied_migrations(self) -> list[tuple[int, str]]:
        """(version, name) of every applied migration."""
        rows = await self.pool.fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
        return [(int(row[0]), str(row[1])) for row in rows]

    async def ping(self) -> None:
        """A trivial query on a pooled connection."""
        await self.pool.fetchval("SELECT 1")

    async def close(self) -> None:
        """Close the pool (waits for connections in use)."""
        await self.pool.close()


async def _read_notes(
    connection: asyncpg.Connection, platform: str, tenant: str, keys: NoteKeys
) -> Notes:
    wanted = {(system, normalize_code(code)): (system, code) for system, code in keys}
    code_keys = sorted({code_key for _, code_key in wanted})
    rows = await connection.fetch(
        "SELECT system, code_key, text, author_name FROM notes "
        "WHERE platform = $1 AND tenant = $2 AND code_key = ANY($3::text[])",
        platform,
        tenant,
        code_keys,
    )
    return match_notes(wanted, [(r[0], r[1], r[2], r[3]) for r in rows])


def _count(status: str) -> int:
    """Rows changed, from asyncpg's command tag ("DELETE 3", "INSERT 0 1", "UPDATE 0")."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0
