"""Interfaces between the lookup service and the state it keeps (quotas, team data).

`LookupService` only talks to these protocols, so the SQLite implementation in
`bot/accounts.py` can be swapped for a server database without touching the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.codes.releases import ReleaseCalendar
    from bot.codes.timeline import ReleaseChanges
    from bot.commands import Command
    from bot.model import CodeCard, CodeRef, CodeSystem, Reply, Request, SearchHit, UserRef


@dataclass(frozen=True)
class ChargeOutcome:
    """The result of charging one request.

    `allowed` false means the quota is used up: the answer must carry no code content and
    `refusal` says so and how to get more. `notice` is the quota line shown on every paid
    answer ("5 code lookups remaining (registered plan)."). `replayed` is true when this
    request id was already charged before (a retry): it was not charged again.
    """

    allowed: bool
    notice: str
    refusal: str = ""
    replayed: bool = False


@dataclass(frozen=True)
class LookupRecord:
    """What one answered lookup was, for the team's recent list and stats."""

    system: str
    code: str
    title: str


@dataclass(frozen=True)
class TeamNote:
    """A team's note on a code, shown on that code's card to that team only."""

    text: str
    author: str


class Accounts(Protocol):
    """Quota charging and team state, keyed by (platform, tenant, user)."""

    def cost(self, kind: str) -> int:
        """What a paid answer of `kind` costs: "lookup" (per card), "search", "share"."""
        ...

    async def charge(self, user: UserRef, request_id: str, cost: int) -> ChargeOutcome:
        """Charge `cost` for `request_id` once (atomic, idempotent per request id)."""
        ...

    async def refund(self, user: UserRef, request_id: str) -> None:
        """Undo the charge of a request whose answer could not be produced."""
        ...

    async def record_lookups(self, request: Request, records: Sequence[LookupRecord]) -> None:
        """Remember answered lookups for `/code recent` and `/code stats`."""
        ...

    async def charge_and_notes(
        self, user: UserRef, request_id: str, cost: int, keys: Sequence[tuple[str, str]]
    ) -> tuple[ChargeOutcome, dict[tuple[str, str], TeamNote]]:
        """`charge`, then (only when allowed) the team's notes on the (system, code) pairs.

        Lets an implementation answer both in one database round trip. If it raises, the
        request was not charged (an implementation refunds before raising).
        """
        ...

    async def handle(self, request: Request, command: Command) -> Reply:
        """Answer the free account/team commands: quota, register, admin, note, recent, stats."""
        ...

    async def claim(self, request: Request) -> bool:
        """True when no process has handled `request.request_id` before (processed once)."""
        ...

    async def delivered(self, request: Request) -> None:
        """Record that the request's answer reached the platform."""
        ...

    async def refund_undelivered(self) -> int:
        """Refund charges that were never delivered (a crash); return how many."""
        ...

    def storage_problem(self, error: BaseException) -> str | None:
        """`error` in words when the state database itself failed (full, read-only)."""
        ...

    async def ping(self) -> None:
        """Raise unless the state database answers (readiness)."""
        ...

    async def close(self) -> None:
        """Release database connections."""
        ...


class CodeLookup(Protocol):
    """Exact lookup over the built code database (bot/codes/catalog.py)."""

    def lookup(self, raw: str, as_of: date | None = None) -> list[CodeCard]:
        """Every card whose key matches the typed code (several systems may match), as of
        the date of service `as_of` (None: the newest release held)."""
        ...

    def suggest(self, raw: str, limit: int = 5) -> list[CodeRef]:
        """Close valid codes for a code that does not exist."""
        ...

    def has_cpt(self) -> bool:
        """True when a licensed CPT file has been imported."""
        ...

    def partial(self, raw: str, as_of: date | None = None) -> list[CodeCard]:
        """The card of a partial PCS code: a body system (0D) or a table row (0DTJ)."""
        ...

    def pcs_axis_problem(self, raw: str) -> str:
        """Why a PCS-shaped key is no code of its table ('' when it is not that)."""
        ...

    @property
    def calendar(self) -> ReleaseCalendar:
        """The releases held per code set."""
        ...

    def history(self, raw: str) -> list[tuple[CodeCard, list[str]]]:
        """Each card matching the typed code with its timeline lines across releases."""
        ...

    def changes(
        self, system: str, release: str, day: date, *, full: bool = False
    ) -> ReleaseChanges | None:
        """What a release changed (the release in force on `day` when `release` is '')."""
        ...

    def valid_on(self, refs: list[tuple[str, str]], day: date) -> list[bool]:
        """For each (system, display code): was it a code on `day`?"""
        ...


class CodeSearch(Protocol):
    """Word search over every code set (bot/codes/search.py)."""

    def search(
        self, query: str, system: CodeSystem | None = None, limit: int = 10
    ) -> list[SearchHit]:
        """Best matches for the words, best first."""
        ...

    def autocomplete(self, prefix: str, limit: int = 25) -> list[CodeRef]:
        """Codes matching what the user has typed so far."""
        ...
