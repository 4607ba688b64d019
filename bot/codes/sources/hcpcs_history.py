"""HCPCS Level II by quarter: January 2026 in force (the `codes` table), October 2025 beside it.

- **2026-01** (from 2026-01-01): the CMS ANWEB fixed-width file (bot/codes/sources/hcpcs.py).
  No later quarter is reachable here: HCPCS is as of 2026-01-01.
- **2025-10** (2025-10-01 to 2025-12-31): the CMS October 2025 ANWEB workbook
  `data/hcpcs/HCPC2025_OCT_ANWEB.xlsx`, read with zipfile and a regular expression over the
  sheet XML (no spreadsheet library; ~8,800 rows).

A code is valid in a quarter when it is in that quarter's file and its termination date (the
last day it may be used) is not before the quarter's first day. Each record's add, action and
termination dates stay on the card (`effective`), so a date outside the quarters held is
answered from them. The cross-reference fields (XREF, "an explicit reference crosswalking a
deleted code ... to a valid current code", record layout item 15) name what replaced a
terminated code.
"""

from __future__ import annotations

import gzip
import re
import zipfile
from datetime import date
from pathlib import Path

from bot.codes.releases import Release
from bot.codes.sources import DATA_DIR, SourceData, hcpcs
from bot.codes.sources.release_diff import Snapshot, diff_releases

SYSTEM = "hcpcs"
OCT_2025 = "HCPC2025_OCT_ANWEB.xlsx"
_SHEET = "xl/worksheets/sheet1.xml"
_STRINGS = "xl/sharedStrings.xml"
_CELL = re.compile(rb'<c r="([A-Z]+)(\d+)"([^>]*?)(?:/>|>(?:<v>([^<]*)</v>)?)')
_STRING_ITEM = re.compile(rb"<si>(.*?)</si>", re.S)
_TEXT = re.compile(rb"<t[^>]*>([^<]*)</t>")
_COLUMNS = {b"A": "code", b"C": "recid", b"D": "title", b"AU": "terminated"}
_XREF = (b"Z", b"AA", b"AB", b"AC", b"AD")


def _unescape(raw: bytes) -> str:
    text = raw.decode("utf-8")
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'")):
        text = text.replace(entity, char)
    return text.replace("&amp;", "&")


def read_workbook(path: Path) -> dict[str, dict[str, str]]:
    """The October 2025 workbook's code rows (RECID 3): code -> {title, terminated, xref}."""
    if not path.is_file():
        raise FileNotFoundError(f"HCPCS October 2025 workbook {path} is missing")
    with zipfile.ZipFile(path) as book:
        strings = [
            _unescape(b"".join(_TEXT.findall(item)))
            for item in _STRING_ITEM.findall(book.read(_STRINGS))
        ]
        sheet = book.read(_SHEET)
    rows: dict[bytes, dict[str, str]] = {}
    for column, row, attrs, value in _CELL.findall(sheet):
        if value is None or value == b"" or (column not in _COLUMNS and column not in _XREF):
            continue
        text = strings[int(value)] if b't="s"' in attrs else value.decode("ascii")
        cells = rows.setdefault(row, {})
        if column in _XREF:
            cells["xref"] = f"{cells.get('xref', '')} {text.strip()}".strip()
        else:
            cells[_COLUMNS[column]] = text.strip()
    return {
        cells["code"]: cells
        for row, cells in rows.items()
        if row != b"1" and cells.get("recid") == "3" and cells.get("code")
    }


def _iso(yyyymmdd: str) -> str:
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:8]}" if len(yyyymmdd) == 8 else ""


def _valid_in(terminated: str, start: date) -> bool:
    return not terminated or terminated >= start.isoformat()


def _january_xrefs(data_dir: Path) -> dict[str, str]:
    """Cross-reference codes of each January 2026 code record (layout item 15, 205-229)."""
    xrefs: dict[str, str] = {}
    with gzip.open(data_dir / "hcpcs" / hcpcs.CODES_FILE, "rt", encoding="latin-1") as handle:
        for line in handle:
            if line[10:11] == "3":
                found = " ".join(line[204 + i : 209 + i].strip() for i in range(0, 25, 5)).split()
                if found:
                    xrefs[line[0:5].strip()] = " ".join(found)
    return xrefs


def load(data_dir: Path | None = None) -> SourceData:
    """HCPCS with both quarters held: January 2026 rows, October 2025 as spans and changes."""
    data_dir = data_dir or DATA_DIR
    data = hcpcs.load(data_dir)
    october = read_workbook(data_dir / "hcpcs" / OCT_2025)
    oct_start, jan_start = date(2025, 10, 1), date(2026, 1, 1)
    oct_snapshot: Snapshot = {
        code: (code, cells.get("title", ""), True)
        for code, cells in sorted(october.items())
        if _valid_in(_iso(cells.get("terminated", "")), oct_start)
    }
    jan_snapshot: Snapshot = {
        r.key: (r.code, r.title, True)
        for r in data.rows
        if r.kind == "code" and r.status != "terminated"
    }
    releases = [
        Release(
            SYSTEM,
            "2025-10",
            "October 2025 quarterly update",
            oct_start,
            date(2025, 12, 31),
            f"CMS HCPCS Level II {OCT_2025}",
        ),
        Release(SYSTEM, "2026-01", "January 2026 quarterly update", jan_start, None, data.source),
    ]
    diff = diff_releases(
        SYSTEM,
        releases,
        [lambda: oct_snapshot, lambda: jan_snapshot],
        exact_titles=lambda _i: False,
    )
    xrefs = _january_xrefs(data_dir)
    diff.changes = [
        (*row[:8], xrefs.get(str(row[4]), "")) if row[2] == "deleted" else row
        for row in diff.changes
    ]
    for row in data.rows:
        if row.key in xrefs and row.status == "terminated":
            row.details.setdefault("effective", {})["replaced_by"] = xrefs[row.key]
    data.releases = [
        r.with_counts({**diff.counts.get(r.release, {}), "codes_in_file": n})
        for r, n in zip(
            releases, (len(october), sum(1 for r in data.rows if r.kind == "code")), strict=True
        )
    ]
    data.spans, data.changes = diff.spans, diff.changes
    return data
