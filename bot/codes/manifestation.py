"""Manifestation codes: ICD-10-CM codes that describe a manifestation of an underlying disease.

Tabular convention: a code (or category) titled "… in diseases classified elsewhere" with a
"Code first" note is a manifestation code. It may never be sequenced first or listed as the
principal diagnosis; the etiology is coded first (G63, N08, F02.80, D63.1 under D63 "Anemia
in chronic diseases classified elsewhere"). The card says so in a note of its own, ranked
first, so a coder cannot miss it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

MANIFESTATION_KEY = "manifestation"
MANIFESTATION_NOTE = (
    "Manifestation code: may not be sequenced first or reported as the principal "
    "diagnosis; code the underlying condition (etiology) first, as the Code first note says."
)
_MARKER = "classified elsewhere"
_CODE_KINDS = frozenset({"category", "subcategory", "code"})


def is_manifestation(
    title: str,
    ancestors: Iterable[tuple[str, str]],
    notes: Mapping[str, Sequence[str]],
) -> bool:
    """True for a code whose title, or its category's or subcategory's, says "in diseases
    classified elsewhere" and to which a Code first note applies.

    `ancestors` are (kind, title) pairs of the code's ancestors (chapters and blocks are
    ignored: a block titled "… classified elsewhere" does not make every code in it one).
    """
    if not notes.get("code_first"):
        return False
    titles = [title, *(t for kind, t in ancestors if kind in _CODE_KINDS)]
    return any(_MARKER in t.lower() for t in titles)
