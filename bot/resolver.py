"""Turn typed code tokens into reply items: cards, CPT notices or not-found with suggestions.

Shared by the chat service and the `codebot lookup` CLI so both answer the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from bot.codes.cpt_ranges import section_for
from bot.codes.dated import before_icd10
from bot.codes.normalize import (
    CodeShape,
    code_sets_of_shape,
    is_block_shaped,
    is_cpt_modifier,
    is_cpt_shaped,
    is_hcpcs_shaped,
    normalize_code,
)
from bot.codes.releases import ICD10_START
from bot.commands import CodeToken
from bot.model import CodeCard, CodeRef, CodeSystem, CptInfo, NotFound, ReplyItem
from bot.ports import CodeLookup

MODIFIER_SUGGEST_POOL = 25
MAX_SUGGEST_INPUT = 12  # longer strings are not typos of a code: do not search for neighbours
ALSO_LABEL = "Also ICD-10-CM"
# CMS created the HCPCS Level II modifiers XE, XP, XS and XU as more specific subsets of CPT
# modifier 59 (CMS MLN1783722, "Proper Use of Modifiers 59 & -X{EPSU}"); their descriptors
# are public and come from our HCPCS data.
CPT_MODIFIER_ALTERNATIVES = {"59": ("XE", "XP", "XS", "XU")}


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
            return self._hcpcs_first(token, [_before_icd10(card, as_of) for card in cards])
        key = normalize_code(token.text)
        if is_cpt_modifier(key) and not self._catalog.has_cpt():
            return [self._cpt_modifier(key)]
        if is_cpt_shaped(key) and not self._catalog.has_cpt():
            section, range_label = section_for(key)
            return [CptInfo(code=key, section=section, range_label=range_label)]
        # Only when no code has the key (GZ is a modifier, B020 is B02.0): 0D, 0DTJ.
        if token.modifier_only or token.text.startswith("-"):
            return []
        return [_before_icd10(card, as_of) for card in self._catalog.partial(token.text, as_of)]

    def _hcpcs_first(self, token: CodeToken, cards: list[ReplyItem]) -> list[ReplyItem]:
        """An undotted letter + 4 digits (J1100) is typed as an HCPCS code: its card alone,
        pointing at the ICD-10-CM code with the same key ("also ICD-10-CM J11.00")."""
        if "." in token.text or not is_hcpcs_shaped(normalize_code(token.text)):
            return cards
        hcpcs = [c for c in cards if isinstance(c, CodeCard) and c.system is CodeSystem.HCPCS]
        others = [c for c in cards if isinstance(c, CodeCard) and c.system is CodeSystem.ICD10CM]
        if len(hcpcs) != 1 or not others:
            return cards
        pointer = tuple((ALSO_LABEL, f"{o.code} {o.title} (/code {o.code})") for o in others)
        return [replace(hcpcs[0], attributes=pointer + hcpcs[0].attributes)]

    def _cpt_modifier(self, key: str) -> CptInfo:
        """Two digits: a CPT® modifier, with the public HCPCS alternatives where CMS has them."""
        see_also: list[CodeRef] = []
        for code in CPT_MODIFIER_ALTERNATIVES.get(key, ()):
            for card in self._catalog.lookup(code):
                if card.system is CodeSystem.HCPCS and card.kind == "modifier":
                    see_also.append(CodeRef(card.system, card.code, card.title, card.billable))
        return CptInfo(
            code=key,
            section="CPT® modifier",
            range_label="two-digit modifier",
            kind="modifier",
            see_also=tuple(see_also),
        )

    def not_found(self, typed: str, shape: CodeShape = CodeShape.CODE) -> NotFound:
        """`X is not a valid ICD-10-CM code.` with close valid codes (modifiers for `-XX`).

        The message echoes what the user typed and names the code sets the shape fits
        (E11.90: ICD-10-CM only, since the dot rules HCPCS E1190 out).
        """
        shown = typed.strip()[:MAX_SUGGEST_INPUT] or "That"
        suggestions = tuple(self._catalog.suggest(typed)) if len(typed) <= MAX_SUGGEST_INPUT else ()
        if shape is CodeShape.MODIFIER and suggestions:
            # `-XX`: only modifiers are close; ask for more so five survive the filter
            wider = self._catalog.suggest(typed, limit=MODIFIER_SUGGEST_POOL)
            suggestions = tuple(ref for ref in wider if len(ref.code) == 2)[:5]
        key = normalize_code(typed)
        why = ""
        if shape is CodeShape.MODIFIER:
            kind = "modifier"
        elif is_block_shaped(key):
            kind = "ICD-10-CM block"
        else:
            labels = [CodeSystem(s).label for s in code_sets_of_shape(key, dotted="." in typed)]
            kind = (" or ".join(labels) + " code") if labels else "code"
            if CodeSystem.ICD10PCS.label in labels and len(typed) <= MAX_SUGGEST_INPUT:
                why = self._catalog.pcs_axis_problem(typed)
        message = f"{shown} is not a valid {kind}" + (f": {why}." if why else ".")
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
