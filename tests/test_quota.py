"""The quota ledger: plans, charging, idempotency, rollover, grants, refunds, team pools.

Every ledger test runs on both backends (`state_url`: a real SQLite file, a database on a
real PostgreSQL server); the clock is injected so month boundaries can be crossed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bot.config import ConfigError, Settings
from bot.model import UserRef
from bot.state import open_store
from bot.state.ledger import QuotaLedger
from bot.state.plans import DEFAULT_PLANS, Period, PlanTable, month_key, next_month_start
from bot.state.store import StateStore

GUEST_REFUSAL = (
    "0 code lookups remaining. Guest accounts are limited to 1 lookup. "
    "Register with `/code register` to get 5 more."
)
ALICE = UserRef("slack", "T1", "U1", "alice")
BOB = UserRef("slack", "T1", "U2", "bob")
CAROL_ELSEWHERE = UserRef("slack", "T2", "U1", "carol")


class Clock:
    """A settable clock (not a mock: a plain callable the ledger is given)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))


@pytest.fixture
async def make_ledger(state_url: str, clock: Clock) -> AsyncIterator[Any]:
    opened: list[StateStore] = []

    async def make(quota: Mapping[str, Any] | None = None) -> QuotaLedger:
        """A ledger on the test's database (each call: another connection to the same one)."""
        store = await open_store(Settings(database_url=state_url))
        opened.append(store)
        plans = PlanTable.from_config(quota)
        await store.install_plans(plans)
        return QuotaLedger(store, plans, clock)

    yield make
    for store in opened:
        await store.close()


# ---------------------------------------------------------------------------- plans


def test_default_plans() -> None:
    table = PlanTable.from_config({})
    assert table.guest.limit == 1 and table.guest.period is Period.LIFETIME
    assert table.registered.limit == 6
    assert table.plans["pro"].limit == 500 and table.plans["pro"].period is Period.MONTHLY
    assert table.plans["unlimited"].unlimited
    assert table.plans["team_2000"].limit == 2000
    assert table.register_bonus() == 5
    assert table.cost("lookup") == 1 and table.cost("search") == 1
    assert {plan.name for plan in DEFAULT_PLANS} <= set(table.plans)


def test_config_overrides_and_adds_plans() -> None:
    table = PlanTable.from_config(
        {
            "costs": {"search": 2},
            "plans": {
                "guest": {"limit": 3},
                "team_10000": {"limit": 10000, "period": "monthly", "label": "Team 10k"},
                "vip": {"unlimited": True},
            },
        }
    )
    assert table.guest.limit == 3
    assert table.plans["team_10000"].display == "Team 10k"
    assert table.plans["vip"].unlimited
    assert table.cost("search") == 2 and table.cost("lookup") == 1
    assert table.register_bonus() == 3


@pytest.mark.parametrize(
    "quota",
    [
        {"plans": {"pro": {"limit": -1}}},
        {"plans": {"pro": {"limit": True}}},
        {"plans": {"pro": {"limit": 5, "period": "weekly"}}},
        {"plans": {"pro": {"limit": 5, "resets": "monthly"}}},
        {"plans": {"Pro Plan": {"limit": 5}}},
        {"plans": {"pro": {"limit": 5, "unlimited": True}}},
        {"plans": {"pro": "500"}},
        {"costs": {"lookup": -1}},
        {"guest_plan": "nobody"},
        {"gueest_plan": "guest"},
    ],
)
def test_bad_quota_config_is_rejected(quota: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PlanTable.from_config(quota)


def test_periods() -> None:
    assert month_key(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)) == "2026-12"
    assert next_month_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == date(2027, 1, 1)
    assert next_month_start(datetime(2026, 2, 1, tzinfo=UTC)) == date(2026, 3, 1)
    # 23:30 on Nov 30 in New York is already December in UTC
    from datetime import timedelta, timezone

    new_york = timezone(timedelta(hours=-5))
    assert month_key(datetime(2026, 11, 30, 23, 30, tzinfo=new_york)) == "2026-12"


# ---------------------------------------------------------------------------- charging


async def test_guest_gets_one_lookup_then_the_register_hint(make_ledger: Any) -> None:
    ledger = await make_ledger()
    first = await ledger.charge(ALICE, "r1", 1)
    assert first.allowed and not first.replayed
    assert first.notice == "0 code lookups remaining (guest plan)."
    second = await ledger.charge(ALICE, "r2", 1)
    assert not second.allowed
    assert second.refusal == GUEST_REFUSAL
    assert second.notice == "0 code lookups remaining (guest plan)."


async def test_register_gives_five_more_and_is_idempotent(make_ledger: Any) -> None:
    ledger = await make_ledger()
    await ledger.charge(ALICE, "r1", 1)
    first = await ledger.register(ALICE)
    assert first.changed and first.plan.name == "registered"
    again = await ledger.register(ALICE)
    assert not again.changed and again.already_registered
    notices = [(await ledger.charge(ALICE, f"r{i}", 1)).notice for i in range(2, 7)]
    assert notices[0] == "4 code lookups remaining (registered plan)."
    assert notices[3] == "1 code lookup remaining (registered plan)."
    assert notices[4] == "0 code lookups remaining (registered plan)."
    refused = await ledger.charge(ALICE, "r7", 1)
    assert not refused.allowed
    assert refused.refusal == (
        "0 code lookups remaining. Ask an admin for more (`/code admin grant`)."
    )


async def test_replayed_request_is_charged_once(make_ledger: Any) -> None:
    ledger = await make_ledger({"plans": {"guest": {"limit": 3}}})
    first = await ledger.charge(ALICE, "evt-1", 1)
    replay = await ledger.charge(ALICE, "evt-1", 1)
    assert replay.allowed and replay.replayed
    assert replay.notice == first.notice == "2 code lookups remaining (guest plan)."
    status = await ledger.status(ALICE)
    assert status.own.used == 1


async def test_replayed_refusal_stays_refused(make_ledger: Any) -> None:
    ledger = await make_ledger({"plans": {"guest": {"limit": 0}}})
    refused = await ledger.charge(ALICE, "evt-1", 1)
    await ledger.grant(ALICE, "U1", 5, "admin")
    replay = await ledger.charge(ALICE, "evt-1", 1)
    assert not refused.allowed and not replay.allowed and replay.replayed
    assert (await ledger.charge(ALICE, "evt-2", 1)).allowed


async def test_empty_request_ids_are_never_deduplicated(make_ledger: Any) -> None:
    ledger = await make_ledger({"plans": {"guest": {"limit": 2}}})
    assert (await ledger.charge(ALICE, "", 1)).allowed
    second = await ledger.charge(ALICE, "", 1)
    assert second.allowed and not second.replayed
    assert not (await ledger.charge(ALICE, "", 1)).allowed


async def test_limit_zero_allows_nothing(make_ledger: Any) -> None:
    ledger = await make_ledger({"plans": {"guest": {"limit": 0}, "registered": {"limit": 0}}})
    outcome = await ledger.charge(ALICE, "r1", 1)
    assert not outcome.allowed
    assert outcome.notice == "0 code lookups remaining (guest plan)."
    # no register hint when registering gives nothing more
    assert "register" not in outcome.refusal
    assert (await ledger.status(ALICE)).own.used == 0


async def test_cost_above_remaining_is_refused_whole(make_ledger: Any) -> None:
    ledger = await make_ledger({"plans": {"guest": {"limit": 3}}})
    assert (await ledger.charge(ALICE, "r1", 2)).allowed
    outcome = await ledger.charge(ALICE, "r2", 2)
    assert not outcome.allowed
    assert outcome.refusal.startswith("Only 1 code lookup remaining")
    assert (await ledger.status(ALICE)).own.used == 2


async def test_negative_cost_is_a_programming_error(make_ledger: Any) -> None:
    ledger = await make_ledger()
    with pytest.raises(ValueError):
        await ledger.charge(ALICE, "r1", -1)


async def test_unlimited_plan(make_ledger: Any) -> None:
    ledger = await make_ledger()
    await ledger.set_user_plan(ALICE, "U1", ledger.plans.plans["unlimited"])
    for i in range(20):
        outcome = await ledger.charge(ALICE, f"r{i}", 1)
        assert outcome.allowed and outcome.notice == "Unlimited plan."


async def test_monthly_rollover_with_injected_clock(make_ledger: Any, clock: Clock) -> None:
    ledger = await make_ledger({"plans": {"pro": {"limit": 2, "period": "monthly"}}})
    await ledger.set_user_plan(ALICE, "U1", ledger.plans.plans["pro"])
    clock.at = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    assert (await ledger.charge(ALICE, "n1", 1)).notice == (
        "1 code lookup remaining (pro plan). Resets 2026-12-01 (UTC)."
    )
    await ledger.charge(ALICE, "n2", 1)
    refused = await ledger.charge(ALICE, "n3", 1)
    assert not refused.allowed
    assert "Resets 2026-12-01 (UTC)." in refused.refusal
    assert "/code admin grant" in refused.refusal
    clock.at = datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC)
    december = await ledger.charge(ALICE, "d1", 1)
    assert december.allowed
    assert december.notice == "1 code lookup remaining (pro plan). Resets 2027-01-01 (UTC)."
    # a replay of a November request after the rollover is still November's outcome
    replay = await ledger.charge(ALICE, "n3", 1)
    assert replay.replayed and not replay.allowed
    assert (await ledger.status(ALICE)).own.used == 1


async def test_lifetime_plans_never_roll_over(make_ledger: Any, clock: Clock) -> None:
    ledger = await make_ledger()
    await ledger.charge(ALICE, "r1", 1)
    clock.at = datetime(2031, 1, 1, tzinfo=UTC)
    assert not (await ledger.charge(ALICE, "r2", 1)).allowed


# ---------------------------------------------------------------------------- grants, refunds


@pytest.mark.parametrize("amount", [-1, -50, 0, 1_000_001])
async def test_bad_grants_are_rejected(make_ledger: Any, amount: int) -> None:
    ledger = await make_ledger()
    with pytest.raises(ValueError):
        await ledger.grant(ALICE, "U1", amount, "admin")
    assert (await ledger.status(ALICE)).own.granted == 0


async def test_grant_adds_to_the_current_period(make_ledger: Any, clock: Clock) -> None:
    ledger = await make_ledger({"plans": {"pro": {"limit": 1, "period": "monthly"}}})
    await ledger.set_user_plan(ALICE, "U1", ledger.plans.plans["pro"])
    pool = await ledger.grant(ALICE, "U1", 2, "slack:T1:UADMIN")
    assert pool.remaining == 3
    for i in range(3):
        assert (await ledger.charge(ALICE, f"r{i}", 1)).allowed
    assert not (await ledger.charge(ALICE, "r3", 1)).allowed
    clock.at = datetime(2026, 12, 2, tzinfo=UTC)  # the grant was for November
    status = await ledger.status(ALICE)
    assert status.own.granted == 0 and status.own.remaining == 1


async def test_grants_to_guests_last(make_ledger: Any) -> None:
    ledger = await make_ledger()
    await ledger.charge(ALICE, "r1", 1)
    await ledger.grant(ALICE, "U1", 3, "admin")
    outcome = await ledger.charge(ALICE, "r2", 1)
    assert outcome.allowed and outcome.notice == "2 code lookups remaining (guest plan)."


async def test_refund_gives_the_lookup_back(make_ledger: Any) -> None:
    ledger = await make_ledger()
    assert (await ledger.charge(ALICE, "r1", 1)).allowed
    assert await ledger.refund(ALICE, "r1")
    assert not await ledger.refund(ALICE, "r1")
    assert not await ledger.refund(ALICE, "never-charged")
    assert (await ledger.status(ALICE)).own.used == 0
    # the same request id retried after the refund is charged afresh, once
    again = await ledger.charge(ALICE, "r1", 1)
    assert again.allowed and not again.replayed
    assert await ledger.ledger_check() == []


async def test_refund_only_touches_the_owners_charge(make_ledger: Any) -> None:
    ledger = await make_ledger()
    await ledger.charge(ALICE, "r1", 1)
    assert not await ledger.refund(BOB, "r1")
    assert (await ledger.status(ALICE)).own.used == 1


# ---------------------------------------------------------------------------- team pools


async def test_team_pool_first_then_own(make_ledger: Any) -> None:
    ledger = await make_ledger({"plans": {"small_team": {"limit": 2, "period": "monthly"}}})
    await ledger.set_team_plan(ALICE, ledger.plans.plans["small_team"])
    first = await ledger.charge(ALICE, "r1", 1)
    assert first.notice == (
        "1 code lookup remaining for your team (small_team plan). Resets 2026-12-01 (UTC)."
    )
    assert (await ledger.charge(BOB, "r2", 1)).notice.startswith("0 code lookups remaining for")
    # the pool is empty: Alice's own guest lookup is next, then nothing
    own = await ledger.charge(ALICE, "r3", 1)
    assert own.allowed and own.notice == "0 code lookups remaining (guest plan)."
    refused = await ledger.charge(ALICE, "r4", 1)
    assert not refused.allowed
    assert "Your team's small_team plan is used up until 2026-12-01 (UTC)." in refused.refusal
    assert "/code register" in refused.refusal
    # another tenant's pool is untouched
    assert (await ledger.charge(CAROL_ELSEWHERE, "r5", 1)).notice == (
        "0 code lookups remaining (guest plan)."
    )
    status = await ledger.status(ALICE)
    assert status.team is not None and status.team.used == 2
    assert await ledger.ledger_check() == []


async def test_team_grants(make_ledger: Any) -> None:
    ledger = await make_ledger({"plans": {"guest": {"limit": 0}}})
    with pytest.raises(ValueError, match="team plan"):
        await ledger.grant(ALICE, None, 5, "admin")
    await ledger.set_team_plan(ALICE, ledger.plans.plans["team_2000"])
    pool = await ledger.grant(ALICE, None, 5, "admin")
    assert pool.remaining == 2005
    await ledger.set_team_plan(ALICE, None)
    assert not (await ledger.charge(ALICE, "r1", 1)).allowed


async def test_concurrent_charges_in_one_process_never_overspend(make_ledger: Any) -> None:
    ledger = await make_ledger({"plans": {"guest": {"limit": 0}, "t": {"limit": 25}}})
    other = await make_ledger({"plans": {"guest": {"limit": 0}, "t": {"limit": 25}}})
    await ledger.set_team_plan(ALICE, ledger.plans.plans["t"])
    users = [UserRef("slack", "T1", f"U{i}") for i in range(10)]
    outcomes = await asyncio.gather(
        *(
            (ledger if i % 2 else other).charge(users[i % 10], f"req-{i % 60}", 1)
            for i in range(120)  # every request id is sent twice, on two connections
        )
    )
    fresh = [outcome for outcome in outcomes if not outcome.replayed]
    assert len(fresh) == 60
    assert sum(outcome.allowed for outcome in fresh) == 25
    assert await ledger.ledger_check() == []


async def test_replicas_with_different_plans_charge_their_own_limits(make_ledger: Any) -> None:
    """A rolling deploy: two processes on one database, one with a bigger `pro` plan."""
    old = await make_ledger({"plans": {"pro": {"limit": 1, "period": "monthly"}}})
    new = await make_ledger({"plans": {"pro": {"limit": 3, "period": "monthly"}}})
    await old.set_user_plan(ALICE, "U1", old.plans.plans["pro"])
    assert (await old.charge(ALICE, "r1", 1)).allowed
    assert not (await old.charge(ALICE, "r2", 1)).allowed  # the old config: 1 a month
    assert (await new.charge(ALICE, "r3", 1)).notice.startswith("1 code lookup remaining")
    assert (await new.charge(ALICE, "r4", 1)).allowed
    assert not (await new.charge(ALICE, "r5", 1)).allowed  # the new config: 3 a month
    assert not (await old.charge(ALICE, "r6", 1)).allowed
    assert await new.ledger_check() == []
