"""Turn typed code tokens into reply items: cards, CPT notices or not-found with suggestions.

Shared by the chat service and the `codebot lookup` CLI so both answer the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.codes.cpt_ranges import section_for
from bot.codes.normalize import CodeShape, is_cpt_shaped, normalize_code
from bot.commands import CodeToken
from bot.model import CodeCard, CptInfo, NotFound, ReplyItem
from bot.ports import CodeLookup

MODIFIER_SUGGEST_POOL = 25
MAX_SUGGEST_INPUT = 12  # longer strings are not typos of a code: do not search for neighbours


class CodeResolver:
    """Resolves code tokens against the catalog. Pure reads; never charges."""

    def __init__(self, catalog: CodeLookup) -> None:
        self._catalog = catalog

    def items(self, tokens: Sequence[CodeToken]) -> list[ReplyItem]:
        """One or more items per token: every match, else a CPT notice, else not-found."""
        items: list[ReplyItem] = []
        for token in tokens:
            items.extend(self.resolve(token) or [self.not_found(token.text, token.shape)])
        return items

    def items_or_none(self, tokens: Sequence[CodeToken]) -> list[ReplyItem] | None:
        """Like `items`, but None when every token was a word that only looked like a code."""
        found = [self.resolve(token) for token in tokens]
        if tokens and all(
            not matches and token.shape in (CodeShape.MAYBE, CodeShape.MODIFIER)
            for token, matches in zip(tokens, found, strict=True)
        ):
            return None  # the caller searches instead: no "did you mean" work for nothing
        items: list[ReplyItem] = []
        for token, matches in zip(tokens, found, strict=True):
            items.extend(matches or [self.not_found(token.text, token.shape)])
        return items

    def resolve(self, token: CodeToken) -> list[ReplyItem]:
        """Cards matching the token (modifiers first for -LT), or a CPT notice, or nothing."""
        if token.shape is CodeShape.WORD:
            return []
        cards: list[ReplyItem] = list(self._catalog.lookup(token.text))
        if token.shape is CodeShape.MODIFIER:
            modifiers = [c for c in cards if isinstance(c, CodeCard) and c.kind == "modifier"]
            cards = list(modifiers) or cards
        if cards:
            return cards
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
