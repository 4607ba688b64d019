"""ICD-10-CM Table of Drugs and Chemicals, Neoplasm Table and External Cause Index (FY2025
April) as search vocabulary.

* Table of Drugs: each substance row has six cells (poisoning accidental, intentional
  self-harm, assault, undetermined; adverse effect; underdosing), each a T-code without its
  7th character ("Acetaminophen" -> T39.1X1 ...). The index term is "substance, column".
* Neoplasm Table: each site row has six cells (malignant primary, malignant secondary, ca in
  situ, benign, uncertain behavior, unspecified behavior); "C50.41-" means "and its
  children". The index term is "Neoplasm, site path, column".
* External Cause Index: every path with a `<code>` ("Bite, bitten by, dog" -> W54.0).

Codes are written as the tables write them; their keys (no dot, no trailing '-') are code
prefixes, so a 6-character T-code reaches its 7th-character codes. The tables are FY2025:
the search index build checks each prefix against the FY2026 codes and reports how many
point to codes that gained children since (followed) or no longer exist (dropped).
`<nemod>` words (nonessential modifiers) are left out of the terms.
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from pathlib import Path

from bot.codes.sources import DATA_DIR
from bot.codes.vocabulary import IndexTerm, Vocabulary, clean_text

DRUG_FILE = "icd-10-cm-drug-2025.xml.gz"
NEOPLASM_FILE = "icd-10-cm-neoplasm-2025.xml.gz"
EINDEX_FILE = "icd-10-cm-eindex-2025.xml.gz"
SYSTEM = "icd10cm"


def _title(elem: ET.Element) -> str:
    """A title without its `<nemod>` (nonessential modifier) children."""
    title = elem.find("title")
    if title is None:
        return ""
    return clean_text(title.text or "") + "".join(
        " " + clean_text(child.tail or "") for child in title if child.tail
    )


def code_key(cell: str) -> str:
    """A table cell's code as a key prefix ('T39.1X1' -> 'T391X1', 'D05.-' -> 'D05';
    '' for an empty cell '--')."""
    key = cell.strip().rstrip("-").replace(".", "").upper()
    return key if key.isalnum() and len(key) >= 3 else ""


def _read(path: Path) -> ET.Element:
    if not path.is_file():
        raise FileNotFoundError(f"ICD-10-CM table {path} is missing (see data/README.md)")
    with gzip.open(path, "rb") as fh:
        return ET.parse(fh).getroot()


def _columns(root: ET.Element) -> dict[str, str]:
    return {head.get("col", ""): clean_text(head.text or "") for head in root.iter("head")}


def _table_terms(root: ET.Element, source: str, prefix: list[str]) -> list[IndexTerm]:
    """Rows of a table (drugs, neoplasms): every cell of every path."""
    columns = _columns(root)
    terms: list[IndexTerm] = []

    def walk(elem: ET.Element, path: list[str]) -> None:
        title = _title(elem)
        here = [*path, title] if title else path
        for cell in elem.findall("cell"):
            key = code_key(cell.text or "")
            column = columns.get(cell.get("col", ""), "")
            if key and column:
                label = ", ".join([*here, column])
                dash = (cell.text or "").strip().endswith("-")
                terms.append(IndexTerm(source, label, SYSTEM, key, children=dash))
        for child in elem.findall("term"):
            walk(child, here)

    for main in root.iter("mainTerm"):
        walk(main, list(prefix))
    return terms


def _index_terms(root: ET.Element, source: str) -> list[IndexTerm]:
    """Paths of an index (external causes) that end in a code."""
    terms: list[IndexTerm] = []

    def walk(elem: ET.Element, path: list[str]) -> None:
        title = _title(elem)
        here = [*path, title] if title else path
        for code in elem.findall("code"):
            key = code_key(code.text or "")
            if key:
                terms.append(IndexTerm(source, ", ".join(here), SYSTEM, key))
        for child in elem.findall("term"):
            walk(child, here)

    for main in root.iter("mainTerm"):
        walk(main, [])
    return terms


def load(data_dir: Path | None = None) -> Vocabulary:
    """Read the three tables into index terms."""
    folder = (data_dir or DATA_DIR) / "icd10cm"
    drugs = _table_terms(_read(folder / DRUG_FILE), "Table of Drugs", [])
    # The one main term is "Neoplasm, neoplastic": its rows are sites below it.
    neoplasms = _table_terms(_read(folder / NEOPLASM_FILE), "Neoplasm Table", [])
    causes = _index_terms(_read(folder / EINDEX_FILE), "External Cause Index")
    return Vocabulary(
        drugs + neoplasms + causes,
        [],
        [
            f"Table of Drugs FY2025: {len(drugs):,} cells; Neoplasm Table: {len(neoplasms):,}"
            f" cells; External Cause Index: {len(causes):,} paths"
        ],
    )
