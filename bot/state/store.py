"""`StateStore`: the small protocol every state backend implements (SQLite, PostgreSQL).

A store holds rows and makes each decision that must be atomic (a charge, a note edit, a
claim of a request id) in the database; everything that is policy (which plan applies,
notice and refusal texts, note cleaning) lives above it in `bot.state.ledger` and
`bot.state.accounts`, written once for every backend. Arguments are plain values and
`AccountKey`s, never `UserRef`s or config objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from bot.ports import TeamNote
from bot.state.plans import PlanTable
from bot.state.policy import AccountKey, ChargeRow, LookupRow, NoteChange

# (system, display code) pairs -> the tenant's notes on them
NoteKeys = Sequence[tuple[str, str]]
Notes = dict[tuple[str, str], TeamNote]
# platform, tenant, user id, display name, system, code, title, request id, created at
HistoryRow = tuple[str, str, str, str, str, str, str, str, str]
# platform, request id, tenant, user id of an answered request
Delivery = tuple[str, str, str, str]


class StateStore(Protocol):
    """Rows of plans, the charge ledger, usage, grants, history, notes and request claims."""

    description: str  # what to name in errors: "state database /var/state.sqlite"

    async def install_plans(self, plans: PlanTable) -> None:
        """Make `plans` the limits `charge` reads (called once, right after opening)."""
        ...

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
        """Charge `cost` once for (platform, request_id), exactly, under any concurrency.

        Returns the ledger row (fresh, or `replayed=True` with the stored outcome) and, when
        allowed and `note_keys` is not empty, the tenant's notes on those codes read right
        after the charge (or the exception that read raised: the charge stands).
        """
        ...

    async def refund(self, key: AccountKey, request_id: str) -> bool:
        """Delete the charge of `request_id` made by `key`, in one statement."""
        ...

    async def account_plans(self, key: AccountKey) -> tuple[str | None, str | None]:
        """(the user's plan name, the tenant's team plan name), None where unset."""
        ...

    async def is_registered(self, key: AccountKey) -> bool:
        """True once the user ran `/code register`."""
        ...

    async def pool_usage(self, key: AccountKey, pool_user: str, period: str) -> tuple[int, int]:
        """(used, granted) of one pool and period."""
        ...

    async def add_grant(
        self, key: AccountKey, pool_user: str, period: str, amount: int, by: str, now: str
    ) -> None:
        """Add `amount` to a pool's period and write the audit row, in one transaction."""
        ...

    async def set_user_plan(self, key: AccountKey, target: str, plan: str, now: str) -> None:
        """Give user `target` of the key's tenant a plan."""
        ...

    async def set_team_plan(self, key: AccountKey, plan: str | None, now: str) -> None:
        """Set (None: remove) the tenant's team plan."""
        ...

    async def register(
        self, key: AccountKey, *, guest_plan: str, registered_plan: str, name: str, now: str
    ) -> bool:
        """Mark the user registered (a guest moves to `registered_plan`); False if already."""
        ...

    async def save_display_name(self, key: AccountKey, name: str, now: str) -> None:
        """Remember the user's display name (for `admin usage`)."""
        ...

    async def insert_lookups(self, rows: Sequence[HistoryRow]) -> None:
        """Append answered lookups to the team history."""
        ...

    async def team_notes(self, platform: str, tenant: str, keys: NoteKeys) -> Notes:
        """The tenant's notes on (system, display code) pairs."""
        ...

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
        """Save (`text`) or delete (None) a note; only its author or `may_override` may."""
        ...

    async def recent_lookups(self, platform: str, tenant: str, limit: int) -> list[LookupRow]:
        """The tenant's last lookups, newest first."""
        ...

    async def usage_since(self, platform: str, tenant: str, since: str) -> tuple[int, int]:
        """(lookups charged, distinct users) of the tenant since `since`."""
        ...

    async def top_codes(
        self, platform: str, tenant: str, since: str, limit: int
    ) -> list[tuple[str, str, str, int]]:
        """(system, code, title, count) most looked up by the tenant since `since`."""
        ...

    async def top_users(
        self, key: AccountKey, since: str, limit: int
    ) -> list[tuple[str, str, int]]:
        """(user id, display name, lookups charged) of the tenant since `since`."""
        ...

    async def ledger_check(self) -> list[tuple[str, str, str, str, int, int]]:
        """Pools whose counter disagrees with the ledger (empty when consistent)."""
        ...

    async def export_team(self, tenant: str, platform: str | None) -> dict[str, list[Any]]:
        """Every row about one tenant, table by table, as JSON-ready dicts."""
        ...

    async def purge_user(self, user: str, platform: str | None, tenant: str | None) -> int:
        """Delete (or anonymise where counts must stay) one user's rows; return how many."""
        ...

    async def claim_request(
        self, platform: str, request_id: str, tenant: str, user: str, now: str
    ) -> bool:
        """Record `request_id` as being processed; False when some process already did."""
        ...

    async def record_deliveries(self, deliveries: Sequence[Delivery], now: str) -> None:
        """Mark requests answered (the delivery record that crash refunds look for)."""
        ...

    async def refund_undelivered(self, since: str, before: str) -> int:
        """Refund allowed charges made in [since, before) that have no delivery record."""
        ...

    async def records_deliveries_since(self) -> str:
        """When delivery records began here (migration `processed_requests` applied)."""
        ...

    def storage_problem(self, error: BaseException) -> str | None:
        """`error` in words when it is the storage's fault (full, read-only, unreachable),
        naming the database, e.g. "state database /var/state.sqlite is full (…)"; else None."""
        ...

    async def applied_migrations(self) -> list[tuple[int, str]]:
        """(version, name) of every applied schema migration, in order."""
        ...

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections (idempotent)."""
        ...
