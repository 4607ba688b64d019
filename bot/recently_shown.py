"""Which cards each user was just shown, so opening their full card costs nothing more.

A short card comes with a **Full card** button; the user already paid for that code, so
`/code full CODE` (the button, or typed) within `WINDOW_SECONDS` of the lookup is free.
Kept in the process's memory, bounded: a click normally reaches the process that showed
the card (one process per platform by default). With several replicas a click that lands
on another one costs one lookup, never more, and the README says so.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from bot.model import CodeCard, UserRef

WINDOW_SECONDS = 30 * 60
MAX_ENTRIES = 50_000

_Key = tuple[str, str, str, str, str]


class RecentlyShown:
    """(user, code) pairs shown in the last `WINDOW_SECONDS`, oldest dropped first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: OrderedDict[_Key, float] = OrderedDict()

    @staticmethod
    def _key(user: UserRef, card: CodeCard) -> _Key:
        return (user.platform, user.tenant_id, user.user_id, card.system.value, card.code)

    def remember(self, user: UserRef, cards: Iterable[CodeCard]) -> None:
        """Note that `user` was just shown `cards`."""
        now = self._clock()
        for card in cards:
            key = self._key(user, card)
            self._seen[key] = now
            self._seen.move_to_end(key)
        while len(self._seen) > MAX_ENTRIES:
            self._seen.popitem(last=False)

    def was_shown(self, user: UserRef, card: CodeCard) -> bool:
        """True when `user` saw `card` within the window."""
        shown_at = self._seen.get(self._key(user, card))
        return shown_at is not None and self._clock() - shown_at <= WINDOW_SECONDS
