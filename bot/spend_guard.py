"""No free CPU for users with nothing left (issue 12, item 7).

The service computes an answer before charging it, so that a failure never costs the user
anything. For a search that order has a price: a user with no lookups left could send
typo-heavy ten-word queries (the engine's worst case, ~150-250 ms of CPU each, measured with
tests/test_spend_guard.py's queries) and be refused only after the work was done.

`SpendGuard` remembers, per process, who was refused lately. For those users the service
charges *first*: a refusal then costs one SQL statement and no search; if they have lookups
again (an admin grant, a new month), the charge succeeds, the search runs, and a search that
finds nothing is refunded (a search without hits is free, as always). Everyone else keeps
the compute-then-charge order. The memory is a hint only: every decision is the ledger's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.model import Request, UserRef
from bot.ports import Accounts, ChargeOutcome

REFUSED_MEMORY_SECONDS = 600.0  # long enough to cover a burst; a grant is seen at once anyway
MAX_REMEMBERED = 50_000  # bounded under floods of distinct users


class SpendGuard:
    """Who was refused lately, and the charge-first path for them."""

    def __init__(
        self,
        accounts: Accounts,
        *,
        ttl: float = REFUSED_MEMORY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accounts = accounts
        self._ttl = ttl
        self._clock = clock
        self._refused: dict[tuple[str, str, str], float] = {}

    def note(self, user: UserRef, outcome: ChargeOutcome) -> None:
        """Remember the outcome of a charge: a refusal starts charge-first, a success ends it."""
        key = _key(user)
        if outcome.allowed:
            self._refused.pop(key, None)
            return
        if len(self._refused) >= MAX_REMEMBERED:
            self._forget_expired()
            while len(self._refused) >= MAX_REMEMBERED:  # still full: drop the oldest
                del self._refused[next(iter(self._refused))]
        self._refused[key] = self._clock() + self._ttl

    def recently_refused(self, user: UserRef) -> bool:
        """True while the user's last charge in this process was refused (within the TTL)."""
        key = _key(user)
        expiry = self._refused.get(key)
        if expiry is None:
            return False
        if expiry < self._clock():
            del self._refused[key]
            return False
        return True

    async def charge_first(self, request: Request, cost: int) -> ChargeOutcome | None:
        """For a recently refused user, charge before the work (and remember the outcome);
        None for everyone else, who is charged after the answer as usual."""
        if not self.recently_refused(request.user):
            return None
        outcome = await self._accounts.charge(request.user, request.request_id, cost)
        self.note(request.user, outcome)
        return outcome

    async def undo(self, request: Request, early: ChargeOutcome | None) -> None:
        """Refund a charge made first when the answer turned out free (no search hits)."""
        if early is not None and early.allowed and not early.replayed:
            await self._accounts.refund(request.user, request.request_id)

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [k for k, expiry in self._refused.items() if expiry < now]:
            del self._refused[key]


def _key(user: UserRef) -> tuple[str, str, str]:
    return (user.platform, user.tenant_id, user.user_id)


__all__ = ["SpendGuard"]
