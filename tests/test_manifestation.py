"""Manifestation codes are flagged on the card (issue 9, item 6). Expected facts (titles and
Code first notes) come from the tabular XML."""

from __future__ import annotations

import pytest

from bot.codes.catalog import CodeCatalog
from bot.codes.manifestation import MANIFESTATION_KEY
from bot.render import ordered_notes, render_card
from tests.test_card_notes import card, diag, words


def xml_says_manifestation(code: str) -> bool:
    """The code or its category is titled "… classified elsewhere" and a Code first note
    sits on the code or one of its ancestors up to the category."""
    lineage = [code[: n + 1] for n in range(2, min(len(code), 7))]  # F02, F02.8, F02.80
    elements = [diag(c) for c in dict.fromkeys(c.rstrip(".") for c in lineage)]
    titled = any("classified elsewhere" in words(e.find("desc")) for e in elements)  # type: ignore[arg-type]
    return titled and any(e.find("codeFirst") is not None for e in elements)


@pytest.mark.parametrize("code", ["G63", "N08", "F02.80", "D63.1"])
def test_manifestation_codes_are_flagged(catalog: CodeCatalog, code: str) -> None:
    assert xml_says_manifestation(code)
    found = card(catalog, code)
    assert ordered_notes(found)[0][0] == MANIFESTATION_KEY
    text = render_card(found)
    assert "may not be sequenced first" in text and "etiology" in text


@pytest.mark.parametrize("code", ["E11.9", "I10", "S72.001A"])
def test_other_codes_are_not(catalog: CodeCatalog, code: str) -> None:
    assert not xml_says_manifestation(code)
    assert MANIFESTATION_KEY not in card(catalog, code).notes
