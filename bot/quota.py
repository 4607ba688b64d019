"""The quota ledger: charge, refund, grant, plans, registration, usage, over `bot.store`.

Who pays. Usage is kept per pool and period: each (platform, tenant, user) has its own pool
(their plan — guest until they register or an admin sets one — plus admin grants), and a
tenant may have a team plan, a pool shared by all its members. When the tenant has a team
plan, a charge draws from the team pool first and falls back to the member's own allowance
only when the team pool cannot cover it; without a team plan only the own pool is used.
So a team plan adds a shared allowance in front of everyone's personal one, and a grant to
a user (`/code admin grant @user N`) always adds on top for that user.
`/code admin grant team N` adds to the team pool for its current period.

Periods. A lifetime plan has one bucket forever ("lifetime"); a monthly plan has one per
UTC calendar month ("2026-11"), so rollover is simply a new, empty bucket. Grants belong to
the pool's current bucket: a grant on a monthly plan is for this month, on a lifetime plan
for good. Registering moves guest → registered, both lifetime, so the guest's used lookup
still counts (1 of 6: 5 left). The clock is injected so tests can cross month boundaries.

Exactness. `charge` is ONE SQL statement (see `_CHARGE_SQL`): it looks up the user's and
the team's plans (limits come from a per-connection temp table loaded from the config),
reads both pools' usage, decides, and inserts the ledger row keyed by (platform,
request_id); a trigger adds the cost to the chosen usage counter in the same statement.
SQLite runs a write statement under the database's single write lock, so concurrent
requests — in this process or in others sharing the file — are serialised and can never
overspend. `ON CONFLICT DO NOTHING` makes a replayed request id a no-op whose stored
outcome is returned with `replayed=True`. A refund deletes the row and a trigger subtracts
the cost, again in one statement; a crash can therefore never leave the counter and the
ledger disagreeing.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from bot.model import UserRef
from bot.plans import Period, Plan, PlanTable, lookups, month_key, month_start
from bot.ports import ChargeOutcome
from bot.store import Database

TEAM_POOL = ""  # usage.user_id / charges.pool_user of a tenant's shared pool
MAX_GRANT = 1_000_000  # one grant; a bigger number is a typo, not a plan
ANONYMOUS = "(anonymous)"

Clock = Callable[[], datetime]
X = TypeVar("X")


def utc_now() -> datetime:
    """The real clock (UTC, timezone-aware)."""
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """Sortable UTC text for `created_at` columns (naive datetimes are taken as UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of `timestamp`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


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


class GrantRefused(ValueError):
    """A grant the ledger will not make; `reason` is a sentence meant for the admin."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PoolState:
    """One pool's state for the current period. `remaining` None means unlimited."""

    plan: Plan
    period: str
    used: int
    granted: int

    @property
    def limit(self) -> int | None:
        """Plan limit plus grants (None: unlimited)."""
        return None if self.plan.limit is None else self.plan.limit + self.granted

    @property
    def remaining(self) -> int | None:
        """What is left this period (never negative; None: unlimited)."""
        limit = self.limit
        return None if limit is None else max(limit - self.used, 0)


@dataclass(frozen=True)
class QuotaStatus:
    """`/code quota`: the user's own pool and, when set, the team pool."""

    own: PoolState
    team: PoolState | None
    registered: bool


@dataclass(frozen=True)
class RegisterResult:
    """What `/code register` did: `changed` false means nothing changed (idempotent)."""

    changed: bool
    plan: Plan
    already_registered: bool


class QuotaLedger:
    """Charges, refunds, grants and plans for (platform, tenant, user) accounts."""

    def __init__(self, database: Database, plans: PlanTable, clock: Clock = utc_now) -> None:
        self.db = database
        self.plans = plans
        self._clock = clock
        self._plans_installed = False

    def now(self) -> datetime:
        """The injected clock's time."""
        return self._clock()

    # ------------------------------------------------------------------ charging

    async def _account_plans(self, user: UserRef) -> tuple[Plan, Plan | None]:
        row = await self.db.fetchone(_ACCOUNT_SQL, _key(user))
        user_plan_name, team_plan_name = (row[0], row[1]) if row else (None, None)
        # a plan removed from the config falls back to the default, never to "no limit"
        own = self.plans.get(user_plan_name) or self.plans.guest
        team = self.plans.get(team_plan_name)
        return own, team

    async def _install_plans(self) -> None:
        # the charge statement reads limits from a per-connection temp table, so it needs
        # no read of its own before the write (and sees a plan change atomically)
        async with self.db.transaction() as tx:
            await tx.execute(
                "CREATE TEMP TABLE IF NOT EXISTS plan_limits "
                "(name TEXT PRIMARY KEY, lim INTEGER NOT NULL, monthly INTEGER NOT NULL)"
            )
            await tx.execute("DELETE FROM temp.plan_limits")
            for plan in self.plans.plans.values():
                await tx.execute(
                    "INSERT INTO temp.plan_limits (name, lim, monthly) VALUES (?, ?, ?)",
                    (plan.name, plan.sql_limit, plan.period is Period.MONTHLY),
                )
        self._plans_installed = True

    async def charge(self, user: UserRef, request_id: str, cost: int) -> ChargeOutcome:
        """Charge `cost` lookups for `request_id`, once; see the module docstring.

        An empty request id cannot be deduplicated: it gets a fresh unique id.
        Raises ValueError for a negative cost.
        """
        outcome, _ = await self.charge_then(user, request_id, cost, None)
        return outcome

    async def charge_then(
        self,
        user: UserRef,
        request_id: str,
        cost: int,
        then: Callable[[sqlite3.Connection], X] | None,
    ) -> tuple[ChargeOutcome, X | BaseException | None]:
        """`charge`, then, when allowed, `then(connection)` in the SAME database hop.

        `then` is a read of the caller's (e.g. the team notes for the answer) run right
        after the charge statement committed, saving a second thread round trip. Its
        result, or the exception it raised, is returned next to the outcome (None when the
        charge was refused or `then` is None); the charge stands either way.
        """
        if cost < 0:
            raise ValueError("cost must be >= 0")
        if not self._plans_installed:
            await self._install_plans()
        request_id = request_id or f"anon-{uuid.uuid4().hex}"
        now = self.now()
        key = _key(user) | {"request_id": request_id}
        params = key | {
            "cost": cost,
            "guest": self.plans.guest_plan,
            "month": month_key(now),
            "now": timestamp(now),
        }

        def job(
            connection: sqlite3.Connection,
        ) -> tuple[sqlite3.Row, bool, X | BaseException | None]:
            while True:
                rows = connection.execute(_CHARGE_SQL, params).fetchall()
                if rows:
                    row, replayed = rows[0], False
                    break
                rows = connection.execute(_REPLAY_SQL, key).fetchall()
                if rows:  # else refunded between the two statements: charge afresh
                    row, replayed = rows[0], True
                    break
            extra: X | BaseException | None = None
            if then is not None and row["allowed"]:
                try:
                    extra = then(connection)
                except Exception as error:  # reported to the caller, never undoes the charge
                    extra = error
            return row, replayed, extra

        row, replayed, extra = await self.db.run(job)
        if replayed:
            now = parse_timestamp(row["created_at"])
        outcome = self._outcome(
            bool(row["allowed"]),
            row["pool_user"],
            self.plans.get(row["plan"]) or self.plans.guest,
            self.plans.get(row["team_plan"]),
            row["remaining"],
            now,
            replayed=replayed,
        )
        return outcome, extra

    def _outcome(
        self,
        allowed: bool,
        pool_user: str,
        own: Plan,
        team: Plan | None,
        remaining: int,
        at: datetime,
        *,
        replayed: bool = False,
    ) -> ChargeOutcome:
        left = None if remaining < 0 else remaining
        if allowed:
            paid_by_team = pool_user == TEAM_POOL and team is not None
            plan = team if paid_by_team and team is not None else own
            return ChargeOutcome(
                True, notice_text(plan, left, at, team=paid_by_team), replayed=replayed
            )
        return ChargeOutcome(
            False,
            notice_text(own, left or 0, at),
            refusal=self.refusal_text(own, team, left or 0, at),
            replayed=replayed,
        )

    def refusal_text(self, own: Plan, team: Plan | None, left: int, at: datetime) -> str:
        """Why a request was refused and how to get more lookups."""
        if left > 0:
            parts = [f"Only {lookups(left)} remaining, not enough for this request."]
        else:
            parts = [f"{lookups(0)} remaining."]
        if team is not None:
            team_reset = team.resets_on(at)
            parts.append(
                f"Your team's {team.display} plan is used up"
                + (f" until {team_reset.isoformat()} (UTC)." if team_reset else ".")
            )
        if own.name == self.plans.guest_plan and self.plans.register_bonus() > 0:
            limit = own.limit or 0
            parts.append(
                f"Guest accounts are limited to {limit:,} lookup{'' if limit == 1 else 's'}. "
                f"Register with `/code register` to get {self.plans.register_bonus():,} more."
            )
            return " ".join(parts)
        own_reset = own.resets_on(at)
        if own_reset is not None:
            parts.append(f"Resets {own_reset.isoformat()} (UTC).")
        parts.append("Ask an admin for more (`/code admin grant`).")
        return " ".join(parts)

    async def refund(self, user: UserRef, request_id: str) -> bool:
        """Remove the charge of `request_id` (the answer could not be produced).

        One statement: the delete trigger gives the cost back to the pool that paid.
        Returns True when a charge was removed. A later retry of the same request id is
        charged afresh.
        """
        if not request_id:
            return False
        removed = await self.db.execute(
            "DELETE FROM charges WHERE platform = :platform AND request_id = :request_id "
            "AND tenant = :tenant AND user_id = :user",
            _key(user) | {"request_id": request_id},
        )
        return removed > 0

    # ------------------------------------------------------------------ state

    async def status(self, user: UserRef) -> QuotaStatus:
        """The user's own pool and the team pool (if any) for the current period."""
        now = self.now()
        own, team = await self._account_plans(user)
        key = _key(user)
        registered = await self.db.fetchone(
            "SELECT registered_at FROM users WHERE platform = :platform AND tenant = :tenant "
            "AND user_id = :user",
            key,
        )
        own_state = await self._pool(key, key["user"], own, now)
        team_state = await self._pool(key, TEAM_POOL, team, now) if team else None
        return QuotaStatus(
            own_state, team_state, bool(registered is not None and registered[0] is not None)
        )

    async def _pool(
        self, key: dict[str, str], pool_user: str, plan: Plan, now: datetime
    ) -> PoolState:
        period = plan.period_key(now)
        row = await self.db.fetchone(
            "SELECT used, granted FROM usage WHERE platform = :platform AND tenant = :tenant "
            "AND user_id = :pool AND period = :period",
            key | {"pool": pool_user, "period": period},
        )
        used, granted = (int(row[0]), int(row[1])) if row else (0, 0)
        return PoolState(plan, period, used, granted)

    async def grant(self, user: UserRef, target: str | None, amount: int, by: str) -> PoolState:
        """Add `amount` lookups to a user's pool (`target` = user id) or the team pool (None).

        The grant is for the pool's current period. Raises GrantRefused (whose `reason` is
        written for the admin) for an amount below 1 or above MAX_GRANT, and for a team grant
        when the tenant has no team plan.
        """
        if not 1 <= amount <= MAX_GRANT:
            raise GrantRefused(f"a grant must be between 1 and {MAX_GRANT:,}")
        now = self.now()
        if target is None:
            _, plan = await self._account_plans(user)
            if plan is None:
                raise GrantRefused(
                    "this team has no team plan; set one with `/code admin plan team PLAN`"
                )
            pool = TEAM_POOL
        else:
            target_ref = UserRef(user.platform, user.tenant_id, target)
            plan, _ = await self._account_plans(target_ref)
            pool = _user_id(target)
        key = _key(user)
        period = plan.period_key(now)
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO usage (platform, tenant, user_id, period, granted) "
                "VALUES (:platform, :tenant, :pool, :period, :amount) "
                "ON CONFLICT (platform, tenant, user_id, period) "
                "DO UPDATE SET granted = granted + excluded.granted",
                key | {"pool": pool, "period": period, "amount": amount},
            )
            await tx.execute(
                "INSERT INTO grants (platform, tenant, user_id, period, amount, granted_by, "
                "created_at) VALUES (:platform, :tenant, :pool, :period, :amount, :by, :now)",
                key
                | {
                    "pool": pool,
                    "period": period,
                    "amount": amount,
                    "by": by,
                    "now": timestamp(now),
                },
            )
        return await self._pool(key, pool, plan, now)

    async def set_user_plan(self, user: UserRef, target: str, plan: Plan) -> None:
        """Give the user `target` (same platform and tenant as `user`) a plan."""
        await self.db.execute(
            "INSERT INTO users (platform, tenant, user_id, plan, created_at) "
            "VALUES (:platform, :tenant, :target, :plan, :now) "
            "ON CONFLICT (platform, tenant, user_id) DO UPDATE SET plan = excluded.plan",
            _key(user)
            | {"target": _user_id(target), "plan": plan.name, "now": timestamp(self.now())},
        )

    async def set_team_plan(self, user: UserRef, plan: Plan | None) -> None:
        """Set (or, with None, remove) the plan of the user's tenant."""
        await self.db.execute(
            "INSERT INTO teams (platform, tenant, plan, updated_at) "
            "VALUES (:platform, :tenant, :plan, :now) "
            "ON CONFLICT (platform, tenant) DO UPDATE SET plan = excluded.plan, "
            "updated_at = excluded.updated_at",
            _key(user) | {"plan": plan.name if plan else None, "now": timestamp(self.now())},
        )

    async def register(self, user: UserRef) -> RegisterResult:
        """Move a guest to the registered plan, once. Idempotent.

        A user an admin already put on another plan keeps it (registering never lowers a
        plan); it is still marked registered.
        """
        key = _key(user) | {
            "guest": self.plans.guest_plan,
            "registered": self.plans.registered_plan,
            "now": timestamp(self.now()),
            "name": user.display_name,
        }
        # one statement: insert the user as registered, or upgrade an unregistered guest
        changed = await self.db.execute(
            "INSERT INTO users (platform, tenant, user_id, plan, display_name, registered_at, "
            "created_at) VALUES (:platform, :tenant, :user, :registered, :name, :now, :now) "
            "ON CONFLICT (platform, tenant, user_id) DO UPDATE SET "
            "plan = CASE WHEN plan IS NULL OR plan = :guest THEN :registered ELSE plan END, "
            "registered_at = :now WHERE registered_at IS NULL",
            key,
        )
        own, _ = await self._account_plans(user)
        return RegisterResult(changed > 0, own, already_registered=changed == 0)

    async def top_users(self, user: UserRef, limit: int = 10) -> list[tuple[str, str, int]]:
        """(user id, display name, lookups charged) this UTC month in the user's tenant."""
        rows = await self.db.fetchall(
            "SELECT c.user_id, COALESCE(u.display_name, ''), SUM(c.cost) AS total "
            "FROM charges c LEFT JOIN users u ON u.platform = c.platform "
            "AND u.tenant = c.tenant AND u.user_id = c.user_id "
            "WHERE c.platform = :platform AND c.tenant = :tenant AND c.allowed = 1 "
            "AND c.created_at >= :since GROUP BY c.user_id ORDER BY total DESC, c.user_id "
            "LIMIT :limit",
            _key(user) | {"since": timestamp(month_start(self.now())), "limit": limit},
        )
        return [(row[0], row[1], int(row[2])) for row in rows]

    async def ledger_check(self) -> list[tuple[str, str, str, str, int, int]]:
        """Pools whose counter disagrees with the ledger (empty when consistent).

        Rows: (platform, tenant, pool user, period, counter, ledger sum).
        """
        rows = await self.db.fetchall(
            "SELECT u.platform, u.tenant, u.user_id, u.period, u.used, "
            "COALESCE((SELECT SUM(cost) FROM charges c WHERE c.platform = u.platform "
            "AND c.tenant = u.tenant AND c.pool_user = u.user_id AND c.period = u.period "
            "AND c.allowed = 1), 0) AS ledger FROM usage u WHERE u.used != ledger"
        )
        return [tuple(row) for row in rows]


def notice_text(plan: Plan, left: int | None, at: datetime, *, team: bool = False) -> str:
    """The quota line on a paid answer, e.g. `5 code lookups remaining (registered plan).`"""
    if left is None or plan.unlimited:
        return "Unlimited team plan." if team else "Unlimited plan."
    whose = " for your team" if team else ""
    text = f"{lookups(left)} remaining{whose} ({plan.display} plan)."
    resets = plan.resets_on(at)
    if resets is not None:
        text += f" Resets {resets.isoformat()} (UTC)."
    return text


def _user_id(user_id: str) -> str:
    # '' is the team pool's key: a user can never be stored under it
    return user_id or ANONYMOUS


def _key(user: UserRef) -> dict[str, str]:
    return {"platform": user.platform, "tenant": user.tenant_id, "user": _user_id(user.user_id)}
