"""Plans, limits, periods and costs: the freemium table, read from the `[quota]` TOML table.

Defaults (DESIGN.md §5): `guest` 1 lookup for life, `registered` 6 for life (the guest's one
plus 5 more), `pro` 500 a month, `unlimited`, and a pooled team plan `team_2000` (2,000 a
month shared by a Slack workspace / Discord server). Monthly periods are calendar months in
UTC; a lifetime period never resets.

Everything is configurable in `codebot.toml` (see `codebot.toml.example`); every key is
optional and plans given there are merged over the defaults by name::

    [quota]
    guest_plan = "guest"            # the plan of a user never seen before
    registered_plan = "registered"  # the plan `/code register` moves a guest to

    [quota.costs]                   # what each paid answer costs (whole numbers >= 0)
    lookup = 1                      # per code card shown
    search = 1                      # per search listing
    share = 1                       # per shared card

    [quota.plans.pro]
    limit = 500                     # lookups per period (>= 0; 0 = nothing allowed)
    period = "monthly"              # "monthly" (UTC calendar month) or "lifetime"

    [quota.plans.unlimited]
    unlimited = true                # no limit at all

    [quota.plans.team_10000]
    limit = 10000
    period = "monthly"
    label = "Team 10k"              # optional name shown in notices (default: the key)

Any plan can be given to a user (`/code admin plan @user NAME`) or to a whole team
(`/code admin plan team NAME`). Plan names are lower-case letters, digits, `_` and `-`.
Unknown keys are rejected so that a typo never silently changes a limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from bot.config import ConfigError

LIFETIME_KEY = "lifetime"  # period key of lifetime plans: usage never resets
_PLAN_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
_PLAN_KEYS = frozenset({"limit", "period", "unlimited", "label"})
_QUOTA_KEYS = frozenset({"guest_plan", "registered_plan", "costs", "plans"})
MAX_LIMIT = 10**12  # far above any real plan; keeps sums inside SQLite's 64-bit integers


class Period(StrEnum):
    """How often a plan's allowance starts again."""

    LIFETIME = "lifetime"
    MONTHLY = "monthly"


@dataclass(frozen=True)
class Plan:
    """One plan: `limit` lookups per `period`; `limit is None` means unlimited."""

    name: str
    limit: int | None
    period: Period = Period.LIFETIME
    label: str = ""

    @property
    def unlimited(self) -> bool:
        """True when the plan has no limit."""
        return self.limit is None

    @property
    def display(self) -> str:
        """The name shown to users in notices ("registered", "Team 10k")."""
        return self.label or self.name

    @property
    def sql_limit(self) -> int:
        """The limit as the charge statement wants it: -1 for unlimited."""
        return -1 if self.limit is None else self.limit

    def period_key(self, now: datetime) -> str:
        """The usage bucket `now` falls in: "lifetime" or the UTC month "YYYY-MM"."""
        if self.period is Period.LIFETIME:
            return LIFETIME_KEY
        return month_key(now)

    def resets_on(self, now: datetime) -> date | None:
        """The UTC date the allowance starts again, or None for lifetime plans."""
        if self.period is Period.LIFETIME:
            return None
        return next_month_start(now)


def month_key(now: datetime) -> str:
    """The UTC calendar month of `now` as "YYYY-MM" (naive datetimes are taken as UTC)."""
    utc = _as_utc(now)
    return f"{utc.year:04d}-{utc.month:02d}"


def next_month_start(now: datetime) -> date:
    """The first day of the UTC month after `now`."""
    utc = _as_utc(now)
    if utc.month == 12:
        return date(utc.year + 1, 1, 1)
    return date(utc.year, utc.month + 1, 1)


def month_start(now: datetime) -> datetime:
    """Midnight UTC on the first day of `now`'s month (start of "this period" for stats)."""
    utc = _as_utc(now)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def _as_utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan("guest", 1, Period.LIFETIME),
    Plan("registered", 6, Period.LIFETIME),
    Plan("pro", 500, Period.MONTHLY),
    Plan("unlimited", None, Period.LIFETIME),
    Plan("team_2000", 2000, Period.MONTHLY),
)
DEFAULT_COSTS: Mapping[str, int] = {"lookup": 1, "search": 1, "share": 1}


@dataclass(frozen=True)
class PlanTable:
    """All plans by name, the guest and registered plan names, and the cost of each answer."""

    plans: Mapping[str, Plan]
    guest_plan: str = "guest"
    registered_plan: str = "registered"
    costs: Mapping[str, int] | None = None

    @property
    def guest(self) -> Plan:
        """The plan of users who never registered."""
        return self.plans[self.guest_plan]

    @property
    def registered(self) -> Plan:
        """The plan `/code register` gives."""
        return self.plans[self.registered_plan]

    def get(self, name: str | None) -> Plan | None:
        """The plan called `name`, or None (also for a plan removed from the config)."""
        return self.plans.get(name) if name else None

    def cost(self, kind: str) -> int:
        """What an answer of `kind` ("lookup" per card, "search", "share") costs; default 1."""
        return int((self.costs or DEFAULT_COSTS).get(kind, 1))

    def register_bonus(self) -> int:
        """How many more lookups registering gives a guest (5 with the defaults)."""
        guest, registered = self.guest, self.registered
        if registered.limit is None or guest.limit is None:
            return 0
        return max(registered.limit - guest.limit, 0)

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | None) -> PlanTable:
        """Build the table from the raw `[quota]` TOML mapping (None/empty: the defaults).

        Raises ConfigError naming the offending key when the table is malformed.
        """
        table = dict(table or {})
        unknown = set(table) - _QUOTA_KEYS
        if unknown:
            raise ConfigError(f"unknown keys in [quota]: {', '.join(sorted(unknown))}")
        plans = {plan.name: plan for plan in DEFAULT_PLANS}
        raw_plans = table.get("plans", {})
        if not isinstance(raw_plans, Mapping):
            raise ConfigError("[quota.plans] must be a table of plans")
        for name, raw in raw_plans.items():
            plans[name] = _parse_plan(name, raw)
        costs = dict(DEFAULT_COSTS)
        raw_costs = table.get("costs", {})
        if not isinstance(raw_costs, Mapping):
            raise ConfigError("[quota.costs] must be a table")
        for kind, value in raw_costs.items():
            if not _is_count(value):
                raise ConfigError(f"[quota.costs] {kind} must be a whole number >= 0")
            costs[str(kind)] = int(value)
        guest_plan = table.get("guest_plan", "guest")
        registered_plan = table.get("registered_plan", "registered")
        for key, name in (("guest_plan", guest_plan), ("registered_plan", registered_plan)):
            if not isinstance(name, str) or name not in plans:
                raise ConfigError(f"[quota] {key} must name a plan defined in [quota.plans]")
        return cls(plans, guest_plan, registered_plan, costs)


def _is_count(value: object) -> bool:
    # bool is an int subclass: `limit = true` is a typo, not 1
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_LIMIT


def _parse_plan(name: object, raw: object) -> Plan:
    if not isinstance(name, str) or not _PLAN_NAME.match(name):
        raise ConfigError("[quota.plans] names must be 1-32 lower-case letters, digits, '_' or '-'")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[quota.plans.{name}] must be a table")
    unknown = set(raw) - _PLAN_KEYS
    if unknown:
        raise ConfigError(f"unknown keys in [quota.plans.{name}]: {', '.join(sorted(unknown))}")
    label = raw.get("label", "")
    if not isinstance(label, str) or len(label) > 40:
        raise ConfigError(f"[quota.plans.{name}] label must be text of up to 40 characters")
    period_raw = raw.get("period", Period.LIFETIME.value)
    try:
        period = Period(period_raw)
    except ValueError:
        raise ConfigError(f'[quota.plans.{name}] period must be "lifetime" or "monthly"') from None
    unlimited = raw.get("unlimited", False)
    if not isinstance(unlimited, bool):
        raise ConfigError(f"[quota.plans.{name}] unlimited must be true or false")
    if unlimited:
        if "limit" in raw:
            raise ConfigError(f"[quota.plans.{name}] has both limit and unlimited")
        return Plan(name, None, period, label)
    limit = raw.get("limit")
    if not _is_count(limit):
        raise ConfigError(f"[quota.plans.{name}] limit must be a whole number >= 0")
    assert isinstance(limit, int)
    return Plan(name, limit, period, label)


def lookups(count: int) -> str:
    """`1 code lookup` / `5 code lookups` / `1,995 code lookups`."""
    return f"{count:,} code lookup{'' if count == 1 else 's'}"
