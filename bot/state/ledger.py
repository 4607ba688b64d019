"""The quota ledger: charge, refund, grant, plans, registration, usage, over a `StateStore`.

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

Exactness is the store's job (`StateStore.charge`): SQLite charges in ONE statement under
its single write lock, PostgreSQL under a per-tenant transaction advisory lock; both key
the ledger row by (platform, request_id), so a replayed request id returns the stored
outcome with `replayed=True` and is never charged twice, and a refund is one statement
that gives the cost back to the pool that paid. This module turns rows into outcomes and
texts, the same for every backend.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from bot.model import UserRef
from bot.ports import ChargeOutcome
from bot.state.plans import Plan, PlanTable, month_key, month_start
from bot.state.policy import (
    MAX_GRANT,
    TEAM_POOL,
    AccountKey,
    Clock,
    GrantRefused,
    PoolState,
    QuotaStatus,
    RegisterResult,
    account_key,
    notice_text,
    parse_timestamp,
    refusal_text,
    stored_user_id,
    timestamp,
    utc_now,
)
from bot.state.store import NoteKeys, Notes, StateStore


class QuotaLedger:
    """Charges, refunds, grants and plans for (platform, tenant, user) accounts."""

    def __init__(self, store: StateStore, plans: PlanTable, clock: Clock = utc_now) -> None:
        self.store = store
        self.plans = plans
        self._clock = clock

    def now(self) -> datetime:
        """The injected clock's time."""
        return self._clock()

    # ------------------------------------------------------------------ charging

    async def _account_plans(self, key: AccountKey) -> tuple[Plan, Plan | None]:
        user_plan_name, team_plan_name = await self.store.account_plans(key)
        # a plan removed from the config falls back to the default, never to "no limit"
        own = self.plans.get(user_plan_name) or self.plans.guest
        team = self.plans.get(team_plan_name)
        return own, team

    async def charge(self, user: UserRef, request_id: str, cost: int) -> ChargeOutcome:
        """Charge `cost` lookups for `request_id`, once; see the module docstring.

        An empty request id cannot be deduplicated: it gets a fresh unique id.
        Raises ValueError for a negative cost.
        """
        outcome, _ = await self.charge_with_notes(user, request_id, cost, ())
        return outcome

    async def charge_with_notes(
        self, user: UserRef, request_id: str, cost: int, note_keys: NoteKeys
    ) -> tuple[ChargeOutcome, Notes | BaseException | None]:
        """`charge`, then, when allowed, the tenant's notes on `note_keys` in the same hop.

        The notes (or the exception reading them raised) are returned next to the outcome
        (None when the charge was refused or no keys were given); the charge stands either
        way.
        """
        if cost < 0:
            raise ValueError("cost must be >= 0")
        request_id = request_id or f"anon-{uuid.uuid4().hex}"
        now = self.now()
        row, notes = await self.store.charge(
            account_key(user),
            request_id,
            cost,
            guest_plan=self.plans.guest_plan,
            month=month_key(now),
            now=timestamp(now),
            note_keys=note_keys,
        )
        if row.replayed:
            now = parse_timestamp(row.created_at)
        outcome = self._outcome(
            row.allowed,
            row.pool_user,
            self.plans.get(row.plan) or self.plans.guest,
            self.plans.get(row.team_plan),
            row.remaining,
            now,
            replayed=row.replayed,
        )
        return outcome, notes

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
            refusal=refusal_text(self.plans, own, team, left or 0, at),
            replayed=replayed,
        )

    async def refund(self, user: UserRef, request_id: str) -> bool:
        """Remove the charge of `request_id` (the answer could not be produced).

        One statement: the cost goes back to the pool that paid. Returns True when a charge
        was removed. A later retry of the same request id is charged afresh.
        """
        if not request_id:
            return False
        return await self.store.refund(account_key(user), request_id)

    # ------------------------------------------------------------------ state

    async def status(self, user: UserRef) -> QuotaStatus:
        """The user's own pool and the team pool (if any) for the current period."""
        now = self.now()
        key = account_key(user)
        own, team = await self._account_plans(key)
        registered = await self.store.is_registered(key)
        own_state = await self._pool(key, key.user, own, now)
        team_state = await self._pool(key, TEAM_POOL, team, now) if team else None
        return QuotaStatus(own_state, team_state, registered)

    async def _pool(self, key: AccountKey, pool_user: str, plan: Plan, now: datetime) -> PoolState:
        period = plan.period_key(now)
        used, granted = await self.store.pool_usage(key, pool_user, period)
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
        key = account_key(user)
        if target is None:
            _, team_plan = await self._account_plans(key)
            if team_plan is None:
                raise GrantRefused(
                    "this team has no team plan; set one with `/code admin plan team PLAN`"
                )
            plan, pool = team_plan, TEAM_POOL
        else:
            pool = stored_user_id(target)
            plan, _ = await self._account_plans(key._replace(user=pool))
        period = plan.period_key(now)
        await self.store.add_grant(key, pool, period, amount, by, timestamp(now))
        return await self._pool(key, pool, plan, now)

    async def set_user_plan(self, user: UserRef, target: str, plan: Plan) -> None:
        """Give the user `target` (same platform and tenant as `user`) a plan."""
        await self.store.set_user_plan(
            account_key(user), stored_user_id(target), plan.name, timestamp(self.now())
        )

    async def set_team_plan(self, user: UserRef, plan: Plan | None) -> None:
        """Set (or, with None, remove) the plan of the user's tenant."""
        await self.store.set_team_plan(
            account_key(user), plan.name if plan else None, timestamp(self.now())
        )

    async def register(self, user: UserRef) -> RegisterResult:
        """Move a guest to the registered plan, once. Idempotent.

        A user an admin already put on another plan keeps it (registering never lowers a
        plan); it is still marked registered.
        """
        key = account_key(user)
        changed = await self.store.register(
            key,
            guest_plan=self.plans.guest_plan,
            registered_plan=self.plans.registered_plan,
            name=user.display_name,
            now=timestamp(self.now()),
        )
        own, _ = await self._account_plans(key)
        return RegisterResult(changed, own, already_registered=not changed)

    async def top_users(self, user: UserRef, limit: int = 10) -> list[tuple[str, str, int]]:
        """(user id, display name, lookups charged) this UTC month in the user's tenant."""
        return await self.store.top_users(
            account_key(user), timestamp(month_start(self.now())), limit
        )

    async def ledger_check(self) -> list[tuple[str, str, str, str, int, int]]:
        """Pools whose counter disagrees with the ledger (empty when consistent).

        Rows: (platform, tenant, pool user, period, counter, ledger sum).
        """
        return await self.store.ledger_check()
