"""The CMS ICD-10-PCS Definitions (FY2026) as search vocabulary.

The definitions list, for each axis value, what it *includes*: the body part key ("1st Toe"
includes "Hallux"; "Abdomen Muscle" includes "Rectus abdominis muscle"), the device key
("Artificial Sphincter in Urinary System" includes "AMS 800 Urinary Control System") and the
substance key ("4-Factor Prothrombin Complex Concentrate" includes "Kcentra"). Each include
becomes a `Rewrite` to its value's name, the words PCS titles use. Root operations are left
out: their includes are examples ("Partial nephrectomy, liver biopsy"), not synonyms, and
the PCS index already maps such procedure names to codes.
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from pathlib import Path

from bot.codes.sources import DATA_DIR
from bot.codes.sources.pcs_index import value_words
from bot.codes.vocabulary import Rewrite, Vocabulary, clean_text

FILE = "icd10pcs_definitions_2026.xml.gz"
SOURCE = "PCS definitions"
_SKIPPED_AXES = frozenset({"operation", "type"})  # examples, not synonyms (see above)


def load(data_dir: Path | None = None) -> Vocabulary:
    """Read the PCS definitions: includes -> axis value name rewrites."""
    path = (data_dir or DATA_DIR) / "icd10pcs" / FILE
    if not path.is_file():
        raise FileNotFoundError(f"ICD-10-PCS definitions {path} is missing (see data/README.md)")
    with gzip.open(path, "rb") as fh:
        root = ET.parse(fh).getroot()
    rewrites: list[Rewrite] = []
    for axis in root.iter("axis"):
        axis_title = clean_text(axis.findtext("title") or "").lower()
        if axis_title in _SKIPPED_AXES:
            continue
        for entry in axis.findall("terms"):
            names = {value_words(t.text or "") for t in entry.findall("title")}
            for include in entry.findall("includes"):
                phrase = clean_text(include.text or "")
                if not phrase or phrase.lower().startswith("includes "):
                    continue
                for name in sorted(n for n in names if n and n.lower() != phrase.lower()):
                    rewrites.append(Rewrite(SOURCE, phrase, name))
    unique = list(dict.fromkeys(rewrites))
    return Vocabulary([], unique, [f"PCS definitions FY2026: {len(unique):,} includes"])
