"""The CDC list of ICD-10-CM codes exempt from Present On Admission reporting, FY2026.

`data/icd10cm-poa/POAexemptCodesFY26.zip` as published by CDC/NCHS (provenance in
data/README.md); the member `POAexemptCodesFY26.txt` is tab-delimited with a header row
`Order26  POAexemptCode  Description`, codes written with dots (B90.0).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from bot.codes.sources import DATA_DIR

RELEASE = "FY2026"
ZIP_PATH = DATA_DIR / "icd10cm-poa" / "POAexemptCodesFY26.zip"
MEMBER = "POAexemptCodesFY26.txt"
EXPECTED_COUNT = 38_349  # the count CDC's ReadMe states for FY2026


class MissingSource(FileNotFoundError):
    """A knowledge source file is not where the build expects it (the message names it)."""


def read(path: Path = ZIP_PATH) -> list[tuple[str, str]]:
    """(key, title) of every exempt code; the file's count is checked against CDC's ReadMe."""
    if not path.is_file():
        raise MissingSource(f"POA exempt list missing: {path} (CDC POAexemptCodesFY26.zip)")
    with zipfile.ZipFile(path) as archive:
        text = archive.read(MEMBER).decode("latin-1")
    rows: list[tuple[str, str]] = []
    for line in text.splitlines()[1:]:
        fields = line.rstrip("\r").split("\t")
        if len(fields) >= 3 and fields[1].strip():
            rows.append((fields[1].strip().replace(".", "").upper(), fields[2].strip()))
    if len(rows) != EXPECTED_COUNT:
        raise ValueError(f"{path}: {len(rows)} exempt codes, CDC's ReadMe says {EXPECTED_COUNT}")
    return rows
