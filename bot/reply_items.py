"""What a card reply shows and offers: distinct items within one limit, and their buttons.

Every platform shows the same items and the user is charged for exactly those: Discord
takes at most 10 embeds, so a reply never carries more than `MAX_REPLY_ITEMS` items (ten
codes typed that collide across code sets would otherwise make 15 cards, of which Discord
showed 10 and the ledger charged 15). What is left out is named in `Reply.omitted`.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.codes.normalize import typed_form
from bot.model import Action, CodeCard, CptInfo, NotFound, ReplyItem

MAX_REPLY_ITEMS = 10  # Discord's embeds per message, the smallest limit of any platform
MAX_SHARE_BUTTONS = 5


def item_identity(item: ReplyItem) -> tuple[str, ...]:
    """What makes two items the same answer (E11.9 typed twice is one card)."""
    if isinstance(item, CodeCard):
        return ("card", item.system.value, item.code)
    if isinstance(item, CptInfo):
        return ("cpt", item.code)
    if isinstance(item, NotFound):
        return ("missing", item.query.upper())
    return ("hit", item.system.value, item.code)


def item_label(item: ReplyItem) -> str:
    """The code an item answers, as the user would type it again."""
    return item.query if isinstance(item, NotFound) else item.code


def shown_items(
    items: Sequence[ReplyItem], skipped: Sequence[str] = ()
) -> tuple[list[ReplyItem], tuple[str, ...]]:
    """Distinct items, at most `MAX_REPLY_ITEMS`, and the codes left out (typed beyond the
    per-request limit first, then items beyond the reply limit)."""
    seen: set[tuple[str, ...]] = set()
    distinct: list[ReplyItem] = []
    for item in items:
        identity = item_identity(item)
        if identity not in seen:
            seen.add(identity)
            distinct.append(item)
    shown = distinct[:MAX_REPLY_ITEMS]
    left_out = [item_label(item) for item in distinct[MAX_REPLY_ITEMS:]]
    return shown, tuple(dict.fromkeys([*left_out, *skipped]))


def card_actions(cards: Sequence[CodeCard], *, full: bool = False) -> tuple[Action, ...]:
    """Share and Full card buttons, one per distinct command text (B00 in two code sets
    shares both cards with one button), so no two buttons of a message do the same thing
    (Discord refuses two components with one custom_id). A full card has no Full button."""
    actions: list[Action] = []
    seen: set[str] = set()
    for card in cards:
        code = typed_form(card.code, card.kind)
        for kind, value, label in (
            ("share", f"share {code}", f"Share {code}"),
            ("full", f"full {code}", f"Full card {code}"),
        ):
            if (kind == "full" and full) or value in seen:
                continue
            seen.add(value)
            actions.append(Action(kind, value, label))
    per_kind = {"share": 0, "full": 0}
    kept = []
    for action in actions:
        per_kind[action.kind] += 1
        if per_kind[action.kind] <= MAX_SHARE_BUTTONS:
            kept.append(action)
    return tuple(kept)
