"""CPT® sections by code range: what we may say about a CPT code without a licensed file.

Section names and numeric ranges are the public organisation of the code set, not AMA
descriptors, so they can ship in the repository. No descriptor text lives here (or anywhere
in this project): descriptors come only from a licensed file an admin imports.
"""

from __future__ import annotations

from bot.codes.normalize import is_cpt_shaped, normalize_code

# Category I ranges, (first, last, section). Evaluation and Management sits inside the
# Medicine span numerically, so the table is searched in this order: E/M first.
CATEGORY_I: tuple[tuple[str, str, str], ...] = (
    ("99202", "99499", "Evaluation and Management"),
    ("00100", "01999", "Anesthesia"),
    ("10004", "69990", "Surgery"),
    ("70010", "79999", "Radiology"),
    ("80047", "89398", "Pathology and Laboratory"),
    ("90281", "99199", "Medicine"),
    ("99500", "99607", "Medicine"),
)

# Four digits and a letter: the other CPT categories.
LETTER_SECTIONS: dict[str, tuple[str, str]] = {
    "F": ("Category II: Performance measurement", "0001F–9999F"),
    "T": ("Category III: Emerging technology", "0001T–0999T"),
    "U": ("Proprietary Laboratory Analyses (PLA)", "0001U–9999U"),
    # xxxxM codes are the administrative MAAA codes (multianalyte assays with algorithmic
    # analyses); the brief called them "composite measures", which are Category II codes.
    "M": ("Multianalyte Assays with Algorithmic Analyses (MAAA)", "0001M–9999M"),
}

UNASSIGNED = "CPT Category I (no published section for this range)"


def range_label(first: str, last: str) -> str:
    """A printable range, e.g. "70010–79999"."""
    return f"{first}–{last}"


def section_for(code: str) -> tuple[str, str]:
    """The CPT section and its code range for a CPT-shaped code.

    Returns (section name, range label), e.g. ("Radiology", "70010–79999"). A five-digit
    code outside every published range gets (UNASSIGNED, ""); a non-CPT-shaped input
    raises ValueError so that callers do not present a wrong code set.
    """
    key = normalize_code(code)
    if not is_cpt_shaped(key):
        raise ValueError(f"{code!r} is not a CPT-shaped code")
    if key[-1].isalpha():
        return LETTER_SECTIONS[key[-1]]
    for first, last, section in CATEGORY_I:
        # Same-length digit strings compare like the numbers they spell.
        if first <= key <= last:
            return section, range_label(first, last)
    return UNASSIGNED, ""
