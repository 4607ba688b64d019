"""Shared state policy: what every backend agrees on, with no SQL in it.

Keys and constants of the pools, timestamps, the quota notice and refusal texts, note
cleaning and admin target parsing, and the small value types the stores return. Both
stores (`bot.state.sqlite`, `bot.state.postgres`) and the policy layers above them
(`bot.state.ledger`, `bot.state.accounts`) import from here; nothing here touches a
database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

from bot.commands import MAX_NOTE_CHARS
from bot.model import UserRef
from bot.state.plans import Plan, PlanTable, lookups

TEAM_POOL = ""  # usage.user_id / charges.pool_user of a tenant's shared pool
MAX_GRANT = 1_000_000  # one grant; a bigger number is a typo, not a plan
ANONYMOUS = "(anonymous)"  # the stored user id of a request without one
DELETED_USER = "(deleted)"  # what a purged user's id becomes where a row must stay
MAX_TARGET_CHARS = 64

Clock = Callable[[], datetime]


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


class AccountKey(NamedTuple):
    """Who a row belongs to: (platform, tenant, user id as stored)."""

    platform: str
    tenant: str
    user: str


def account_key(user: UserRef) -> AccountKey:
    """The stored key of a user ('' is reserved for the team pool, so it becomes ANONYMOUS)."""
    return AccountKey(user.platform, user.tenant_id, stored_user_id(user.user_id))


def stored_user_id(user_id: str) -> str:
    """A user id as stored: never '' (the team pool's key)."""
    return user_id or ANONYMOUS


class GrantRefused(ValueError):
    """A grant the ledger will not make; `reason` is a sentence meant for the admin."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ChargeRow:
    """A ledger row as a store returns it from `charge` (fresh or replayed)."""

    allowed: bool
    pool_user: str
    plan: str
    team_plan: str | None
    remaining: int  # -1: unlimited
    created_at: str
    replayed: bool


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


class NoteChange(StrEnum):
    """What a note edit did (decided atomically by the store)."""

    SAVED = "saved"
    UPDATED = "updated"
    REMOVED = "removed"
    NO_NOTE = "no note"
    NOT_AUTHOR = "not author"


@dataclass(frozen=True)
class LookupRow:
    """One line of the team's lookup history as `/code recent` shows it."""

    display_name: str
    system: str
    code: str
    title: str
    created_at: str


# ---------------------------------------------------------------------- texts


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


def refusal_text(plans: PlanTable, own: Plan, team: Plan | None, left: int, at: datetime) -> str:
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
    if own.name == plans.guest_plan and plans.register_bonus() > 0:
        limit = own.limit or 0
        parts.append(
            f"Guest accounts are limited to {limit:,} lookup{'' if limit == 1 else 's'}. "
            f"Register with `/code register` to get {plans.register_bonus():,} more."
        )
        return " ".join(parts)
    own_reset = own.resets_on(at)
    if own_reset is not None:
        parts.append(f"Resets {own_reset.isoformat()} (UTC).")
    parts.append("Ask an admin for more (`/code admin grant`).")
    return " ".join(parts)


# ---------------------------------------------------------------------- user text

# <@U123>, <@!123>, <@U123|name> (Slack legacy): the user id is the first group
_USER_MENTION = re.compile(r"^<@!?([A-Za-z0-9_.\-]{1,64})(?:\|[^<>]*)?>$")
# any mention-like syntax: <@…>, <#…>, <!…> (Slack <!channel>, Discord roles <@&…>)
_MENTION_SYNTAX = re.compile(r"<\s*[@#!][^<>]*>")
# mass mentions in plain text; neutralised with a zero-width space so they never ping
_MASS_MENTION = re.compile(r"@(everyone|here|channel)", re.IGNORECASE)
_ZWSP = "\u200b"
_SPACES = re.compile(r"[ \t]+")


def sanitize_note(raw: str, limit: int = MAX_NOTE_CHARS) -> str:
    """Clean note text for storage; never raises.

    NFKC first (so full-width `＠everyone` is caught), control characters become spaces,
    mention syntax is removed until none is left (removal can join new `<…>` pairs), mass
    mentions are broken with a zero-width space, and the result is cut to `limit`.
    """
    text = unicodedata.normalize("NFKC", raw[: limit * 8])
    # ZWSP is kept: it is what neutralises mass mentions, so cleaning twice changes nothing
    text = "".join(ch if ch.isprintable() or ch == _ZWSP else " " for ch in text)
    previous = None
    while previous != text:
        previous = text
        text = _MENTION_SYNTAX.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    text = _MASS_MENTION.sub(lambda match: f"@{_ZWSP}{match.group(1)}", text)
    if len(text) > limit:
        text = text[:limit].rstrip()
    # a cut may split "@\u200b…" but never re-creates "@everyone": the ZWSP comes first
    return text


def normalize_target(raw: str) -> str | None:
    """The user id an admin command names: `<@U123>`, `<@!123>`, `@name` or a bare id.

    None for anything that is not a single user (role or channel mentions, empty, too long).
    """
    text = raw.strip()
    match = _USER_MENTION.match(text)
    if match:
        return match.group(1)
    if text.startswith("<"):
        return None
    text = text.removeprefix("@")
    if not text or len(text) > MAX_TARGET_CHARS or any(ch.isspace() for ch in text):
        return None
    return text
