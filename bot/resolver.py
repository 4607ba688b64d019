"""Turn typed code tokens into reply items: cards, CPT notices or not-found with suggestions.

Shared by the chat service and the `codebot lookup` CLI so both answer the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from bot.codes.cpt_ranges import section_for
from bot.codes.dated import before_icd10
from bot.codes.normalize import CodeShape, is_cpt_shaped, normalize_code
from bot.codes.releases import ICD10_START
from bot.commands import CodeToken
from bot.model import CodeCard, CptInfo, NotFound, ReplyItem
from bot.ports import CodeLookup

MODIFIER_SUGGEST_POOL = 25
MAX_SUGGEST_INPUT = 12  # longer strings are not typos of a code: do not search for neighbours


class CodeResolver:
    """Resolves code tokens against the catalog. Pure reads; never charges."""

    def __init__(self, catalog: CodeLookup) -> None:
        self._catalog = catalog

    def items(self, tokens: Sequence[CodeToken], as_of: date | None = None) -> list[ReplyItem]:
        """One or more items per token: every match, else a CPT notice, else not-found.

        `as_of`: the date of service the cards answer for (None: the newest release held).
        """
        items: list[ReplyItem] = []
        for token in tokens:
            items.extend(self.resolve(token, as_of) or [self.not_found(token.text, token.shape)])
        return items

    def items_or_none(
        self, tokens: Sequence[CodeToken], as_of: date | None = None
    ) -> list[ReplyItem] | None:
        """Like `items`, but None when every token was a word that only looked like a code."""
        found = [self.resolve(token, as_of) for token in tokens]
        if tokens and all(
            not matches and token.shape in (CodeShape.MAYBE, CodeShape.MODIFIER)
            for token, matches in zip(tokens, found, strict=True)
        ):
            return None  # the caller searches instead: no "did you mean" work for nothing
        items: list[ReplyItem] = []
        for token, matches in zip(tokens, found, strict=True):
            items.extend(matches or [self.not_found(token.text, token.shape)])
        return items

    def resolve(self, token: CodeToken, as_of: date | None = None) -> list[ReplyItem]:
        """Cards matching the token (modifiers first for -LT), or a CPT notice, or nothing."""
        if token.shape is CodeShape.WORD:
            return []
        cards: list[ReplyItem] = list(self._catalog.lookup(token.text, as_of))
        if token.shape is CodeShape.MODIFIER:
            modifiers = [c for c in cards if isinstance(c, CodeCard) and c.kind == "modifier"]
            cards = list(modifiers) or cards
        if cards:
            return [_before_icd10(card, as_of) for card in cards]
        key = normalize_code(token.text)
        if is_cpt_shaped(key) and not self._catalog.has_cpt():
            section, range_label = section_for(key)
            return [CptInfo(code=key, section=section, range_label=range_label)]
        return []

    def not_found(self, typed: str, shape: CodeShape = CodeShape.CODE) -> NotFound:
        """`X is not a valid code.` with up to 5 close valid codes (modifiers for `-XX`)."""
        shown = normalize_code(typed)[:MAX_SUGGEST_INPUT] or "That"
        suggestions = tuple(self._catalog.suggest(typed)) if len(typed) <= MAX_SUGGEST_INPUT else ()
        if shape is CodeShape.MODIFIER and suggestions:
            # `-XX`: only modifiers are close; ask for more so five survive the filter
            wider = self._catalog.suggest(typed, limit=MODIFIER_SUGGEST_POOL)
            suggestions = tuple(ref for ref in wider if len(ref.code) == 2)[:5]
        message = f"{shown} is not a valid code."
        if suggestions:
            message += " Did you mean one of these?"
        return NotFound(query=shown, message=message, suggestions=suggestions)


def _before_icd10(item: ReplyItem, as_of: date | None) -> ReplyItem:
    """An ICD-10 card asked about a day before ICD-10 existed becomes a pointer to ICD-9."""
    if not isinstance(item, CodeCard) or not before_icd10(item.system.value, as_of):
        return item
    assert as_of is not None
    return NotFound(
        query=item.code,
        message=(
            f"{item.code} is an {item.system.label} code, and {item.system.label} applies to"
            f" dates of service from {ICD10_START.isoformat()}. Claims dated"
            f" {as_of.isoformat()} used ICD-9-CM: look the ICD-9-CM code up (e.g. /code 250.00)"
            " for its ICD-10 crosswalk."
        ),
    )
