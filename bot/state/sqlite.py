"""`SqliteStore`: the `StateStore` over one SQLite file, the embedded default.

Exactness. `charge` is ONE SQL statement (`_CHARGE_SQL`): it looks up the user's and the
team's plans (limits come from a per-connection temp table loaded from the config), reads
both pools' usage, decides, and inserts the ledger row keyed by (platform, request_id); a
trigger adds the cost to the chosen usage counter in the same statement. SQLite runs a
write statement under the database's single write lock, so concurrent requests — in this
process or in others sharing the file — are serialised and can never overspend.
`ON CONFLICT DO NOTHING` makes a replayed request id a no-op whose stored outcome is
returned. A refund deletes the row and a trigger subtracts the cost, again in one
statement; a crash can therefore never leave the counter and the ledger disagreeing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.codes.normalize import normalize_code
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
from bot.state.sqlite_db import Database, storage_problem
from bot.state.sqlite_schema import MIGRATIONS
from bot.state.store import Delivery, HistoryRow, NoteKeys, Notes

# One statement: find the user's and the team's plans (in the per-connection temp table
# `plan_limits`, loaded from the config), read both pools' usage, choose (1 = team pool,
# 2 = own pool, 0 = refuse) and insert the ledger row; the charges_count trigger adds the
# cost to the chosen counter. A user plan missing from the config falls back to the guest
# plan (never to "no limit"); a missing team plan counts as no team plan. The final SELECT
# needs its `WHERE true`: without it SQLite would parse `ON CONFLICT` as a join constraint.
_CHARGE_SQL = """
WITH
  names AS (
    SELECT
      COALESCE(
        (SELECT p.name FROM users u JOIN temp.plan_limits p ON p.name = u.plan
         WHERE u.platform = :platform AND u.tenant = :tenant AND u.user_id = :user),
        :guest) AS uplan,
      (SELECT p.name FROM teams t JOIN temp.plan_limits p ON p.name = t.plan
       WHERE t.platform = :platform AND t.tenant = :tenant) AS tplan
  ),
  plans AS (
    SELECT names.uplan, names.tplan, names.tplan IS NOT NULL AS has_team,
           up.lim AS ulimit, CASE WHEN up.monthly THEN :month ELSE 'lifetime' END AS uperiod,
           COALESCE(tp.lim, 0) AS tlimit,
           CASE WHEN tp.monthly THEN :month ELSE 'lifetime' END AS tperiod
    FROM names
    JOIN temp.plan_limits up ON up.name = names.uplan
    LEFT JOIN temp.plan_limits tp ON tp.name = names.tplan
  ),
  team AS (
    SELECT COALESCE(SUM(used), 0) AS used, COALESCE(SUM(granted), 0) AS granted
    FROM usage, plans
    WHERE platform = :platform AND tenant = :tenant AND user_id = '' AND period = tperiod
  ),
  own AS (
    SELECT COALESCE(SUM(used), 0) AS used, COALESCE(SUM(granted), 0) AS granted
    FROM usage, plans
    WHERE platform = :platform AND tenant = :tenant AND user_id = :user AND period = uperiod
  ),
  pick AS (
    SELECT plans.*,
      CASE
        WHEN has_team AND (tlimit < 0 OR team.used + :cost <= tlimit + team.granted) THEN 1
        WHEN ulimit < 0 OR own.used + :cost <= ulimit + own.granted THEN 2
        ELSE 0
      END AS choice,
      CASE WHEN tlimit < 0 THEN -1 ELSE tlimit + team.granted - team.used END AS team_left,
      CASE WHEN ulimit < 0 THEN -1 ELSE ulimit + own.granted - own.used END AS own_left
    FROM plans, team, own
  )
INSERT INTO charges (platform, request_id, tenant, user_id, pool_user, period, plan,
                     team_plan, cost, allowed, remaining, created_at)
SELECT :platform, :request_id, :tenant, :user,
       CASE choice WHEN 1 THEN '' ELSE :user END,
       CASE choice WHEN 1 THEN tperiod ELSE uperiod END,
       uplan, tplan, :cost, choice > 0,
       CASE choice
         WHEN 1 THEN CASE WHEN team_left < 0 THEN -1 ELSE team_left - :cost END
         WHEN 2 THEN CASE WHEN own_left < 0 THEN -1 ELSE own_left - :cost END
         ELSE MAX(own_left, 0)
       END,
       :now
FROM pick WHERE true
ON CONFLICT (platform, request_id) DO NOTHING
RETURNING allowed, pool_user, plan, team_plan, remaining
"""

_ACCOUNT_SQL = """
SELECT
  (SELECT plan FROM users WHERE platform = :platform AND tenant = :tenant AND user_id = :user),
  (SELECT plan FROM teams WHERE platform = :platform AND tenant = :tenant)
"""

_REPLAY_SQL = """
SELECT allowed, pool_user, plan, team_plan, remaining, created_at FROM charges
WHERE platform = :platform AND request_id = :request_id
"""

# every table has platform and tenant columns; all columns are exported
TEAM_TABLES = ("teams", "users", "usage", "charges", "grants", "lookups", "notes")
_ROWID_TABLES = frozenset({"grants", "lookups"})


def _key(key: AccountKey) -> dict[str, str]:
    return {"platform": key.platform, "tenant": key.tenant, "user": key.user}


class SqliteStore:
    """The `StateStore` over one SQLite file (see `bot.state.sqlite_db` for the connection)."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self.description = f"state database {database.path}"

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        """Open (create, migrate) the state file at `path`."""
        return cls(await Database.open(path, migrations=MIGRATIONS))

    async def install_plans(self, plans: PlanTable) -> None:
        """Load the limits into the per-connection temp table the charge statement reads.

        The charge statement then needs no read of its own before the write, and sees a
        plan change atomically. Per connection is right here: SQLite's processes each have
        their own connection and their own config.
        """
        async with self.db.transaction() as tx:
            await tx.execute(
                "CREATE TEMP TABLE IF NOT EXISTS plan_limits "
                "(name TEXT PRIMARY KEY, lim INTEGER NOT NULL, monthly INTEGER NOT NULL)"
            )
            await tx.execute("DELETE FROM temp.plan_limits")
            for plan in plans.plans.values():
                await tx.execute(
                    "INSERT INTO temp.plan_limits (name, lim, monthly) VALUES (?, ?, ?)",
                    (plan.name, plan.sql_limit, plan.period is Period.MONTHLY),
                )

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
        """One statement (`_CHARGE_SQL`), then the notes, in one hop of the worker thread."""
        replay_key = {"platform": key.platform, "request_id": request_id}
        params = (
            _key(key)
            | replay_key
            | {
                "cost": cost,
                "guest": guest_plan,
                "month": month,
                "now": now,
            }
        )
        notes_job = _notes_job(key.platform, key.tenant, note_keys) if note_keys else None

        def job(
            connection: sqlite3.Connection,
        ) -> tuple[ChargeRow, Notes | BaseException | None]:
            while True:
                rows = connection.execute(_CHARGE_SQL, params).fetchall()
                if rows:
                    row, replayed = rows[0], False
                    break
                rows = connection.execute(_REPLAY_SQL, replay_key).fetchall()
                if rows:  # else refunded between the two statements: charge afresh
                    row, replayed = rows[0], True
                    break
            created_at = row["created_at"] if replayed else now
            charge = ChargeRow(
                bool(row["allowed"]),
                row["pool_user"],
                row["plan"],
                row["team_plan"],
                int(row["remaining"]),
                created_at,
                replayed,
            )
            extra: Notes | BaseException | None = None
            if notes_job is not None and charge.allowed:
                try:
                    extra = notes_job(connection)
                except Exception as error:  # reported to the caller, never undoes the charge
                    extra = error
            return charge, extra

        return await self.db.run(job)

    async def refund(self, key: AccountKey, request_id: str) -> bool:
        """Delete the charge; the delete trigger gives the cost back (one statement)."""
        removed = await self.db.execute(
            "DELETE FROM charges WHERE platform = :platform AND request_id = :request_id "
            "AND tenant = :tenant AND user_id = :user",
            _key(key) | {"request_id": request_id},
        )
        return removed > 0

    # ------------------------------------------------------------------ accounts

    async def account_plans(self, key: AccountKey) -> tuple[str | None, str | None]:
        """(user plan, team plan) names as stored."""
        row = await self.db.fetchone(_ACCOUNT_SQL, _key(key))
        return (row[0], row[1]) if row else (None, None)

    async def is_registered(self, key: AccountKey) -> bool:
        """True once the user registered."""
        row = await self.db.fetchone(
            "SELECT registered_at FROM users WHERE platform = :platform AND tenant = :tenant "
            "AND user_id = :user",
            _key(key),
        )
        return bool(row is not None and row[0] is not None)

    async def pool_usage(self, key: AccountKey, pool_user: str, period: str) -> tuple[int, int]:
        """(used, granted) of one pool and period."""
        row = await self.db.fetchone(
            "SELECT used, granted FROM usage WHERE platform = :platform AND tenant = :tenant "
            "AND user_id = :pool AND period = :period",
            _key(key) | {"pool": pool_user, "period": period},
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def add_grant(
        self, key: AccountKey, pool_user: str, period: str, amount: int, by: str, now: str
    ) -> None:
        """The usage bump and the audit row, in one transaction."""
        params = _key(key) | {
            "pool": pool_user,
            "period": period,
            "amount": amount,
            "by": by,
            "now": now,
        }
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO usage (platform, tenant, user_id, period, granted) "
                "VALUES (:platform, :tenant, :pool, :period, :amount) "
                "ON CONFLICT (platform, tenant, user_id, period) "
                "DO UPDATE SET granted = granted + excluded.granted",
                params,
            )
            await tx.execute(
                "INSERT INTO grants (platform, tenant, user_id, period, amount, granted_by, "
                "created_at) VALUES (:platform, :tenant, :pool, :period, :amount, :by, :now)",
                params,
            )

    async def set_user_plan(self, key: AccountKey, target: str, plan: str, now: str) -> None:
        """Upsert the target user's plan."""
        await self.db.execute(
            "INSERT INTO users (platform, tenant, user_id, plan, created_at) "
            "VALUES (:platform, :tenant, :target, :plan, :now) "
            "ON CONFLICT (platform, tenant, user_id) DO UPDATE SET plan = excluded.plan",
            _key(key) | {"target": target, "plan": plan, "now": now},
        )

    async def set_team_plan(self, key: AccountKey, plan: str | None, now: str) -> None:
        """Upsert the tenant's team plan (NULL removes it)."""
        await self.db.execute(
            "INSERT INTO teams (platform, tenant, plan, updated_at) "
            "VALUES (:platform, :tenant, :plan, :now) "
            "ON CONFLICT (platform, tenant) DO UPDATE SET plan = excluded.plan, "
            "updated_at = excluded.updated_at",
            _key(key) | {"plan": plan, "now": now},
        )

    async def register(
        self, key: AccountKey, *, guest_plan: str, registered_plan: str, name: str, now: str
    ) -> bool:
        """One statement: insert the user as registered, or upgrade an unregistered guest."""
        changed = await self.db.execute(
            "INSERT INTO users (platform, tenant, user_id, plan, display_name, registered_at, "
            "created_at) VALUES (:platform, :tenant, :user, :registered, :name, :now, :now) "
            "ON CONFLICT (platform, tenant, user_id) DO UPDATE SET "
            "plan = CASE WHEN plan IS NULL OR plan = :guest THEN :registered ELSE plan END, "
            "registered_at = :now WHERE registered_at IS NULL",
            _key(key)
            | {"guest": guest_plan, "registered": registered_plan, "now": now, "name": name},
        )
        return changed > 0

    async def save_display_name(self, key: AccountKey, name: str, now: str) -> None:
        """Upsert the user's display name."""
        await self.db.execute(
            "INSERT INTO users (platform, tenant, user_id, display_name, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, tenant, user_id) "
            "DO UPDATE SET display_name = excluded.display_name",
            (*key, name, now),
        )

    # ------------------------------------------------------------------ team data

    async def insert_lookups(self, rows: Sequence[HistoryRow]) -> None:
        """One multi-row insert (callers send at most a hundred rows)."""
        if not rows:
            return
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        await self.db.execute(
            "INSERT INTO lookups (platform, tenant, user_id, display_name, system, code, "
            f"title, request_id, created_at) VALUES {values}",
            [value for row in rows for value in row],
        )

    async def team_notes(self, platform: str, tenant: str, keys: NoteKeys) -> Notes:
        """The tenant's notes on (system, display code) pairs."""
        if not keys:
            return {}
        return await self.db.run(_notes_job(platform, tenant, keys))

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
        """Read the author and write in one `BEGIN IMMEDIATE` transaction."""
        where = (platform, tenant, code_key, system)
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT author_id FROM notes WHERE platform = ? AND tenant = ? "
                "AND code_key = ? AND system = ?",
                where,
            )
            author = rows[0][0] if rows else None
            if author is not None and author != author_id and not may_override:
                return NoteChange.NOT_AUTHOR
            if text is None:
                if author is None:
                    return NoteChange.NO_NOTE
                await tx.execute(
                    "DELETE FROM notes WHERE platform = ? AND tenant = ? AND code_key = ? "
                    "AND system = ?",
                    where,
                )
                return NoteChange.REMOVED
            await tx.execute(
                "INSERT INTO notes (platform, tenant, system, code_key, code, text, author_id, "
                "author_name, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (platform, tenant, code_key, system) DO UPDATE SET "
                "text = excluded.text, code = excluded.code, author_id = excluded.author_id, "
                "author_name = excluded.author_name, updated_at = excluded.updated_at",
                (platform, tenant, system, code_key, code, text, author_id, author_name, now),
            )
        return NoteChange.UPDATED if author is not None else NoteChange.SAVED

    async def recent_lookups(self, platform: str, tenant: str, limit: int) -> list[LookupRow]:
        """Newest first."""
        rows = await self.db.fetchall(
            "SELECT display_name, system, code, title, created_at FROM lookups "
            "WHERE platform = ? AND tenant = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (platform, tenant, limit),
        )
        return [LookupRow(*row) for row in rows]

    async def usage_since(self, platform: str, tenant: str, since: str) -> tuple[int, int]:
        """(lookups charged, distinct users) since `since`."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(cost), 0), COUNT(DISTINCT user_id) FROM charges "
            "WHERE platform = ? AND tenant = ? AND created_at >= ? AND allowed = 1",
            (platform, tenant, since),
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def top_codes(
        self, platform: str, tenant: str, since: str, limit: int
    ) -> list[tuple[str, str, str, int]]:
        """Most looked-up codes since `since`."""
        rows = await self.db.fetchall(
            "SELECT system, code, MAX(title), COUNT(*) AS n FROM lookups "
            "WHERE platform = ? AND tenant = ? AND created_at >= ? "
            "GROUP BY system, code ORDER BY n DESC, code LIMIT ?",
            (platform, tenant, since, limit),
        )
        return [(row[0], row[1], row[2], int(row[3])) for row in rows]

    async def top_users(
        self, key: AccountKey, since: str, limit: int
    ) -> list[tuple[str, str, int]]:
        """Users by lookups charged since `since`."""
        rows = await self.db.fetchall(
            "SELECT c.user_id, COALESCE(u.display_name, ''), SUM(c.cost) AS total "
            "FROM charges c LEFT JOIN users u ON u.platform = c.platform "
            "AND u.tenant = c.tenant AND u.user_id = c.user_id "
            "WHERE c.platform = :platform AND c.tenant = :tenant AND c.allowed = 1 "
            "AND c.created_at >= :since GROUP BY c.user_id ORDER BY total DESC, c.user_id "
            "LIMIT :limit",
            _key(key) | {"since": since, "limit": limit},
        )
        return [(row[0], row[1], int(row[2])) for row in rows]

    async def ledger_check(self) -> list[tuple[str, str, str, str, int, int]]:
        """Counters that disagree with the ledger."""
        rows = await self.db.fetchall(
            "SELECT u.platform, u.tenant, u.user_id, u.period, u.used, "
            "COALESCE((SELECT SUM(cost) FROM charges c WHERE c.platform = u.platform "
            "AND c.tenant = u.tenant AND c.pool_user = u.user_id AND c.period = u.period "
            "AND c.allowed = 1), 0) AS ledger FROM usage u WHERE u.used != ledger"
        )
        return [tuple(row) for row in rows]

    # ------------------------------------------------------------------ data requests

    async def export_team(self, tenant: str, platform: str | None) -> dict[str, list[Any]]:
        """Every row of `TEAM_TABLES` about the tenant, in insertion order where it has one."""
        data: dict[str, list[Any]] = {}
        for table in TEAM_TABLES:
            sql = f"SELECT * FROM {table} WHERE tenant = ?"
            params: tuple[str, ...] = (tenant,)
            if platform is not None:
                sql += " AND platform = ?"
                params += (platform,)
            if table in _ROWID_TABLES:
                sql += " ORDER BY rowid"
            rows = await self.db.fetchall(sql, params)
            data[table] = [dict(row) for row in rows]
        return data

    async def purge_user(self, user: str, platform: str | None, tenant: str | None) -> int:
        """One transaction; team-pool charges stay, anonymised, so team counts still add up."""
        scope = ""
        scope_params: tuple[str, ...] = ()
        if platform is not None:
            scope += " AND platform = ?"
            scope_params += (platform,)
        if tenant is not None:
            scope += " AND tenant = ?"
            scope_params += (tenant,)
        params = (user, *scope_params)
        changed = 0
        async with self.db.transaction() as tx:
            # own-pool charges go (their trigger keeps the counters right, and the usage
            # rows go next); team-pool charges stay for the team's totals, without the user
            changed += await tx.execute(
                f"DELETE FROM charges WHERE user_id = ? AND pool_user != '{TEAM_POOL}'{scope}",
                params,
            )
            changed += await tx.execute(
                f"UPDATE charges SET user_id = '{DELETED_USER}' WHERE user_id = ?{scope}", params
            )
            changed += await tx.execute(f"DELETE FROM usage WHERE user_id = ?{scope}", params)
            changed += await tx.execute(f"DELETE FROM grants WHERE user_id = ?{scope}", params)
            # grants made by the user keep their amount, not the admin's id
            changed += await tx.execute(
                f"UPDATE grants SET granted_by = '{DELETED_USER}' "
                "WHERE substr(granted_by, length(granted_by) - length(?)) = ':' || ?"
                f"{scope}",
                (user, *params),
            )
            changed += await tx.execute(f"DELETE FROM lookups WHERE user_id = ?{scope}", params)
            changed += await tx.execute(f"DELETE FROM notes WHERE author_id = ?{scope}", params)
            changed += await tx.execute(
                f"DELETE FROM processed_requests WHERE user_id = ?{scope}", params
            )
            changed += await tx.execute(f"DELETE FROM users WHERE user_id = ?{scope}", params)
        return changed

    # ------------------------------------------------------------------ processed once

    async def claim_request(
        self, platform: str, request_id: str, tenant: str, user: str, now: str
    ) -> bool:
        """One INSERT; the primary key decides which process got there first."""
        inserted = await self.db.execute(
            "INSERT INTO processed_requests (platform, request_id, tenant, user_id, claimed_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, request_id) DO NOTHING",
            (platform, request_id, tenant, user, now),
        )
        return inserted > 0

    async def record_deliveries(self, deliveries: Sequence[Delivery], now: str) -> None:
        """One multi-row upsert (callers send at most a hundred)."""
        if not deliveries:
            return
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(deliveries))
        await self.db.execute(
            "INSERT INTO processed_requests (platform, request_id, tenant, user_id, "
            f"claimed_at, answered_at) VALUES {values} ON CONFLICT (platform, request_id) "
            "DO UPDATE SET answered_at = excluded.answered_at",
            [value for delivery in deliveries for value in (*delivery, now, now)],
        )

    async def refund_undelivered(self, since: str, before: str) -> int:
        """One DELETE; the refund trigger gives each cost back."""
        return await self.db.execute(
            "DELETE FROM charges WHERE allowed = 1 AND created_at >= ? AND created_at < ? "
            "AND NOT EXISTS (SELECT 1 FROM processed_requests p WHERE p.platform = "
            "charges.platform AND p.request_id = charges.request_id "
            "AND p.answered_at IS NOT NULL)",
            (since, before),
        )

    async def records_deliveries_since(self) -> str:
        """applied_at of the processed_requests migration."""
        row = await self.db.fetchone(
            "SELECT applied_at FROM schema_migrations WHERE name = 'processed_requests'"
        )
        return str(row[0]) if row else ""

    def storage_problem(self, error: BaseException) -> str | None:
        """Disk full, read-only, cannot open, I/O error: named with the file's path."""
        problem = storage_problem(error)
        return f"{self.description} {problem}" if problem else None

    async def applied_migrations(self) -> list[tuple[int, str]]:
        """(version, name) of every applied migration."""
        rows = await self.db.fetchall("SELECT version, name FROM schema_migrations ORDER BY 1")
        return [(int(row[0]), str(row[1])) for row in rows]

    async def ping(self) -> None:
        """A trivial read through the same connection and worker thread as the requests."""
        await self.db.fetchone("SELECT 1 FROM schema_migrations LIMIT 1")

    async def close(self) -> None:
        """Close the connection."""
        await self.db.close()


def _notes_job(platform: str, tenant: str, keys: NoteKeys) -> Callable[[sqlite3.Connection], Notes]:
    """A `Database.run` job: the tenant's notes on (system, display code) pairs (non-empty)."""
    wanted = {(system, normalize_code(code)): (system, code) for system, code in keys}
    code_keys = sorted({code_key for _, code_key in wanted})
    marks = ", ".join("?" * len(code_keys))
    sql = (
        "SELECT system, code_key, text, author_name FROM notes "
        f"WHERE platform = ? AND tenant = ? AND code_key IN ({marks})"
    )
    params = (platform, tenant, *code_keys)

    def job(connection: sqlite3.Connection) -> Notes:
        rows = connection.execute(sql, params).fetchall()
        return match_notes(wanted, [(r[0], r[1], r[2], r[3]) for r in rows])

    return job
