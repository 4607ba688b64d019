"""The CMS ICD-10-PCS Alphabetic Index (FY2025) as search vocabulary.

The index is where coders look up operative-note words: "Appendectomy -> see Excision,
Appendix 0DBJ / see Resection, Appendix 0DTJ", "Cholecystectomy", "Phacoemulsification".
Every path of the index that ends in codes (`<code>`, `<codes>`, `<tab>`, also inside a
`<see>`) becomes an `IndexTerm` for that code prefix; a path that ends in `<use>` (body part
and device key: "Abdominal esophagus -> use Esophagus, Lower") or in a bare `<see>` ("Abrasion
-> see Extraction") becomes a `Rewrite`.

FY2026 has no public copy of the index (see data/README.md); the FY2025 index is used and its
prefixes are checked against the FY2026 codes by the search index build, which reports the
ones that no longer match any code.
"""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from bot.codes.sources import DATA_DIR
from bot.codes.vocabulary import IndexTerm, Rewrite, Vocabulary, clean_text

FILE = "icd10pcs_index_2025.xml.gz"
SOURCE = "PCS index"
SYSTEM = "icd10pcs"
# Laterality of a body part value ("Foot Muscle, Right"): the query says it itself.
_SIDE = re.compile(r",?\s*\b(?:right|left|bilateral)\b", re.IGNORECASE)
# A device value's body-system suffix ("External Fixation Device in Upper Joints"): the title of
# a code of that system never repeats it.
_IN_SYSTEM = re.compile(r"\s+in(?:\s+[A-Z].*)?$")
# Trademark marks in device names: "ABECMA(R)", "aprevo(tm)".
_MARKS = re.compile(r"\((?:r|tm)\)", re.IGNORECASE)


def _text(elem: ET.Element | None) -> str:
    return clean_text(_MARKS.sub("", elem.text or "")) if elem is not None else ""


def _targets(elem: ET.Element) -> list[str]:
    """The code prefixes a node (or its `see`) points to."""
    out: list[str] = []
    for tag in ("code", "codes", "tab"):
        for child in elem.findall(tag):
            value = (child.text or "").strip().upper()
            if value.isalnum():
                out.append(value)
    return out


def _walk(
    elem: ET.Element, path: list[str], terms: list[IndexTerm], rewrites: list[Rewrite]
) -> None:
    title = _text(elem.find("title"))
    here = [*path, title] if title else path
    label = ", ".join(here)
    for target in _targets(elem):
        terms.append(IndexTerm(SOURCE, label, SYSTEM, target, children=len(target) < 7))
    for see in elem.findall("see"):
        text = _text(see)
        found = _targets(see)
        for target in found:
            label_see = f"{label}, see {text}"
            terms.append(IndexTerm(SOURCE, label_see, SYSTEM, target, children=len(target) < 7))
        if not found and text and here:
            rewrites.append(Rewrite(SOURCE, label, text))
    for use in elem.findall("use"):
        text = value_words(_text(use))
        if text and here:
            rewrites.append(Rewrite(SOURCE, label, text))
    for child in elem.findall("term"):
        _walk(child, here, terms, rewrites)


def value_words(text: str) -> str:
    """An axis value name as a query would say it: no side, no body-system suffix."""
    return clean_text(_IN_SYSTEM.sub("", _SIDE.sub("", text)))


def load(data_dir: Path | None = None) -> Vocabulary:
    """Read the PCS index: index terms (path -> code prefix) and use/see rewrites."""
    path = (data_dir or DATA_DIR) / "icd10pcs" / FILE
    if not path.is_file():
        raise FileNotFoundError(f"ICD-10-PCS index {path} is missing (see data/README.md)")
    with gzip.open(path, "rb") as fh:
        root = ET.parse(fh).getroot()
    terms: list[IndexTerm] = []
    rewrites: list[Rewrite] = []
    for main in root.iter("mainTerm"):
        _walk(main, [], terms, rewrites)
    # Repeated use lines (one per side) collapse once the side is gone.
    unique = list(dict.fromkeys(rewrites))
    return Vocabulary(
        terms,
        unique,
        [f"PCS index FY2025: {len(terms):,} code paths, {len(unique):,} use/see references"],
    )
