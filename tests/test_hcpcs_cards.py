"""HCPCS Level II cards (issue 9, items 8-10): cross-references, dates that read right, the
Medicare status, and every value of a repeated field. Facts come from the CMS file itself,
parsed here by the record layout's positions."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from functools import cache

import pytest

from bot.codes.catalog import CodeCatalog
from bot.codes.sources import DATA_DIR
from bot.codes.sources.hcpcs import CODES_FILE
from bot.model import CodeCard, CodeSystem
from bot.render import billing_status, render_card


@cache
def first_records() -> dict[tuple[bool, str], str]:
    """(is modifier, code) -> the first record line (ids 3 and 7) of the CMS file."""
    out: dict[tuple[bool, str], str] = {}
    with gzip.open(DATA_DIR / "hcpcs" / CODES_FILE, "rt", encoding="latin-1") as handle:
        for line in handle:
            if len(line) > 11 and line[10] in "37":
                modifier = line[10] == "7"
                out[(modifier, line[3:5] if modifier else line[0:5])] = line.ljust(320)
    return out


def xrefs(line: str) -> list[str]:
    """Field 15, HCPCS Cross Reference Code: five 5-character values from position 205."""
    return [v for v in (line[i : i + 5].strip() for i in range(204, 229, 5)) if v]


def hcpcs(catalog: CodeCatalog, code: str) -> CodeCard:
    (found,) = [c for c in catalog.lookup(code) if c.system is CodeSystem.HCPCS]
    return found


def test_every_cross_reference_is_read(catalog: CodeCatalog) -> None:
    records = first_records()
    with_xref = {key: xrefs(line) for key, line in records.items() if xrefs(line)}
    assert len(with_xref) == 213  # the count, from the file
    for (_modifier, code), targets in with_xref.items():
        card = hcpcs(catalog, code)
        shown = [v.split()[0] for label, v in card.attributes if label in ("Use instead", "See")]
        assert shown == targets, code
    assert with_xref[(False, "C9014")] == ["J0567"]
    assert with_xref[(False, "A0380")] == ["A0425"]
    assert with_xref[(True, "AM")] == ["QM"]


def test_terminated_code_reads_last_date_of_service(catalog: CodeCatalog) -> None:
    line = first_records()[(False, "C9014")]
    ended = f"{line[284:288]}-{line[288:290]}-{line[290:292]}"
    card = hcpcs(catalog, "C9014")
    assert billing_status(card) == f"terminated: last date of service {ended}; use J0567"
    (target,) = catalog.lookup("J0567")
    assert ("Use instead", f"J0567 {target.title}") in card.attributes
    dates = next(line for line in render_card(card).splitlines() if line.startswith("Dates:"))
    assert "effective" not in dates and "effective" not in card.effective


def test_not_payable_by_medicare_is_the_status(catalog: CodeCatalog) -> None:
    assert first_records()[(False, "A0380")][229] == "I"  # coverage code I
    card = hcpcs(catalog, "A0380")
    assert card.status == "active"
    assert billing_status(card) == "active, not payable by Medicare (coverage I); use A0425"
    assert billing_status(hcpcs(catalog, "AM")).startswith("modifier")


@pytest.mark.parametrize(
    ("code", "label", "start", "stop", "width"),
    [("G0124", "Pricing indicator", 119, 127, 2), ("K0856", "Type of service", 260, 265, 1)],
)
def test_repeated_fields_keep_every_value(
    catalog: CodeCatalog, code: str, label: str, start: int, stop: int, width: int
) -> None:
    line = first_records()[(False, code)]
    values = [v for v in (line[i : i + width].strip() for i in range(start, stop, width)) if v]
    assert len(values) >= 2
    shown = [v.split(":")[0] for lab, v in hcpcs(catalog, code).attributes if lab == label]
    assert shown == values
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "lookup", code, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    (entry,) = [e for e in json.loads(out.stdout) if e.get("system") == "hcpcs"]
    assert [v.split(":")[0] for v in entry["attributes"][label].split("; ")] == values
