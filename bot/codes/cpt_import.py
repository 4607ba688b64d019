"""Import a licensed CPT® file into the code database (`codebot data import-cpt FILE`).

CPT descriptors belong to the AMA, so they never ship with codebot: an admin with a licence
imports their own file. Accepted layouts:

* two columns, code and descriptor, separated by a tab or a comma, with or without a
  header row (extra columns are ignored; a header naming a "description" column picks it);
* the CMS PPRRVU CSV: a few title lines, then a column row with HCPCS, MOD, DESCRIPTION...;
  rows whose HCPCS is CPT-shaped and whose MOD is empty are taken, modifier rows and HCPCS
  Level II rows are skipped.

All previous CPT rows are replaced in one transaction, so readers see either the old or the
new set. `codebot data build` carries imported CPT rows over into the rebuilt database.
"""

from __future__ import annotations

import csv
import gc
import importlib
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.codes.cpt_ranges import UNASSIGNED, section_for
from bot.codes.normalize import is_cpt_shaped

SYSTEM = "cpt"
LABEL = "CPT®"
MAX_DESCRIPTOR = 2_000  # longer than any real descriptor: a sign of a mis-parsed file
Progress = Callable[[str], None]


class CptImportError(Exception):
    """The file could not be imported at all (nothing was changed)."""


@dataclass(frozen=True)
class ImportReport:
    """Result of an import: codes stored, lines rejected (line number, reason), codes replaced."""

    imported: int
    rejected: list[tuple[int, str]] = field(default_factory=list)
    replaced: int = 0
    skipped: int = 0
    release: str = ""


@dataclass(frozen=True)
class _Parsed:
    codes: dict[str, str]
    rejected: list[tuple[int, str]]
    skipped: int
    layout: str


def _read_text(file: Path) -> str:
    """File text; UTF-8 (with or without BOM), else Latin-1 as CMS files often are."""
    data = file.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """CSV rows with their 1-based line numbers (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for fields in reader:
        yield reader.line_num, [f.strip() for f in fields]


def _find_pprrvu_header(text: str) -> int | None:
    """Line index of a PPRRVU column row (HCPCS, MOD, DESCRIPTION) within the first lines."""
    for index, line in enumerate(text.splitlines()[:30]):
        names = [c.strip().strip('"').upper() for c in line.split(",")]
        if "HCPCS" in names and "DESCRIPTION" in names:
            return index
    return None


def _parse_pprrvu(text: str, header_index: int) -> _Parsed:
    """Codes from the CMS PPRRVU CSV layout."""
    codes: dict[str, str] = {}
    first_line: dict[str, int] = {}
    rejected: list[tuple[int, str]] = []
    skipped = 0
    columns: dict[str, int] = {}
    for line_no, fields in _rows(text, ","):
        if line_no <= header_index:
            continue  # CMS title lines above the column row
        if not columns:
            columns = {name.upper(): i for i, name in enumerate(fields)}
            continue
        if not any(fields):
            continue
        code = _field(fields, columns.get("HCPCS")).upper()
        modifier = _field(fields, columns.get("MOD"))
        descriptor = _field(fields, columns.get("DESCRIPTION"))
        if modifier or not is_cpt_shaped(code):
            skipped += 1  # modifier rows (26, TC...) and HCPCS Level II codes
            continue
        _accept(code, descriptor, line_no, codes, first_line, rejected)
    return _Parsed(codes, rejected, skipped, "CMS PPRRVU")


def _field(fields: list[str], index: int | None) -> str:
    """fields[index], or '' when the column is missing or the row is short."""
    if index is None or index >= len(fields):
        return ""
    return fields[index]


def _accept(
    code: str,
    descriptor: str,
    line_no: int,
    codes: dict[str, str],
    first_line: dict[str, int],
    rejected: list[tuple[int, str]],
) -> None:
    """Store one code or record why its line was rejected."""
    descriptor = " ".join(descriptor.split())
    if not descriptor:
        rejected.append((line_no, f"{code}: no descriptor"))
    elif len(descriptor) > MAX_DESCRIPTOR:
        rejected.append((line_no, f"{code}: descriptor longer than {MAX_DESCRIPTOR} characters"))
    elif code in codes:
        rejected.append((line_no, f"{code}: duplicate of line {first_line[code]}"))
    else:
        codes[code] = descriptor
        first_line[code] = line_no


def _parse_delimited(text: str) -> _Parsed:
    """Codes from a tab- or comma-separated code + descriptor file."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "\t" if "\t" in first else ","
    codes: dict[str, str] = {}
    first_line: dict[str, int] = {}
    rejected: list[tuple[int, str]] = []
    code_col, desc_col = 0, 1
    seen_data = False
    for line_no, fields in _rows(text, delimiter):
        if not any(fields) or fields[0].startswith("#"):
            continue
        code = _field(fields, code_col).upper()
        if not seen_data and not any(ch.isdigit() for ch in code):
            seen_data = True
            # A first row without a code-like first field is a header: it names the columns.
            names = [f.lower() for f in fields]
            code_col = next((i for i, n in enumerate(names) if "code" in n or n == "hcpcs"), 0)
            desc_cols = [i for i, n in enumerate(names) if "desc" in n and i != code_col]
            long_cols = [i for i in desc_cols if "long" in names[i] or "full" in names[i]]
            desc_col = (long_cols or desc_cols or [1 if code_col == 0 else 0])[0]
            continue
        seen_data = True
        if not is_cpt_shaped(code):
            shown = code[:20] or "(empty)"
            rejected.append((line_no, f"not a CPT code: {shown!r}"))
            continue
        _accept(code, _field(fields, desc_col), line_no, codes, first_line, rejected)
    layout = "tab-separated" if delimiter == "\t" else "comma-separated"
    return _Parsed(codes, rejected, 0, layout)


def parse_cpt_file(file: Path) -> tuple[dict[str, str], list[tuple[int, str]], int, str]:
    """Parse a CPT file: (code -> descriptor, rejected lines, skipped rows, layout name)."""
    text = _read_text(file)
    header = _find_pprrvu_header(text)
    parsed = _parse_pprrvu(text, header) if header is not None else _parse_delimited(text)
    return parsed.codes, parsed.rejected, parsed.skipped, parsed.layout


def _section_rows(codes: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    """code -> (header code, header key, header title) for the CPT range headers."""
    out: dict[str, tuple[str, str, str]] = {}
    for code in codes:
        section, label = section_for(code)
        header_code = label or "Unassigned"
        # Keys start with CPTSECTION so that a typed code never lands on a header.
        header_key = "CPTSECTION" + (label.replace("–", "-") if label else "UNASSIGNED")
        out[code] = (header_code, header_key, section if label else UNASSIGNED)
    return out


def import_cpt(db_path: Path, file: Path, progress: Progress = print) -> ImportReport:
    """Import a licensed CPT file into the code database at `db_path`, replacing older CPT rows.

    Raises CptImportError (and changes nothing) when the database is missing or the file
    holds no usable CPT code. Rejected lines are reported, not fatal.
    """
    db_path, file = Path(db_path), Path(file)
    if not db_path.is_file():
        raise CptImportError(f"no code database at {db_path}; run `codebot data build` first")
    if not file.is_file():
        raise CptImportError(f"no such file: {file}")
    progress(f"reading {file.name} ...")
    codes, rejected, skipped, layout = parse_cpt_file(file)
    if not codes:
        raise CptImportError(
            f"{file.name}: no CPT codes found ({len(rejected)} lines rejected); expected code"
            " and descriptor separated by a tab or comma, or the CMS PPRRVU CSV"
        )
    progress(f"  {layout}: {len(codes):,} codes, {len(rejected):,} rejected, {skipped:,} skipped")
    imported_on = datetime.now(UTC).date().isoformat()
    release = f"{file.name} (imported {imported_on})"
    headers = _section_rows(codes)
    conn = sqlite3.connect(db_path, timeout=30)
    conn.isolation_level = None  # explicit transaction below
    try:
        conn.execute("BEGIN IMMEDIATE")
        replaced = conn.execute(
            "SELECT count(*) FROM codes WHERE system = ? AND kind = 'code'", (SYSTEM,)
        ).fetchone()[0]
        conn.execute("DELETE FROM codes WHERE system = ?", (SYSTEM,))
        header_ids: dict[str, int] = {}
        order = 0
        for code in sorted(codes):
            header_code, header_key, title = headers[code]
            if header_code not in header_ids:
                cur = conn.execute(
                    "INSERT INTO codes (system, code, key, kind, title, billable, sort_order)"
                    " VALUES (?, ?, ?, 'section', ?, 0, ?)",
                    (SYSTEM, header_code, header_key, title, order),
                )
                header_ids[header_code] = int(cur.lastrowid or 0)
                order += 1
        conn.executemany(
            "INSERT INTO codes (system, code, key, kind, title, billable, parent_id, sort_order)"
            " VALUES (?, ?, ?, 'code', ?, 1, ?, ?)",
            [
                (SYSTEM, code, code, codes[code], header_ids[headers[code][0]], order + i)
                for i, code in enumerate(sorted(codes))
            ],
        )
        counts = {"codes": len(codes), "billable": len(codes), "sections": len(header_ids)}
        conn.execute(
            "INSERT OR REPLACE INTO code_sets (system, label, release, source, counts)"
            " VALUES (?, ?, ?, ?, ?)",
            (SYSTEM, LABEL, release, f"licensed file {file.name} ({layout})", json.dumps(counts)),
        )
        # Same transaction: readers never see new CPT rows with a stale search index.
        _refresh_search_index(conn, progress)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    progress(f"imported {len(codes):,} CPT codes (replaced {replaced:,})")
    return ImportReport(
        imported=len(codes), rejected=rejected, replaced=replaced, skipped=skipped, release=release
    )


def _refresh_search_index(conn: sqlite3.Connection, progress: Progress) -> None:
    """Rebuild the search index (inside the caller's transaction) so CPT words are found.

    `build_search_index` drops and recreates its own tables, so calling it again is safe.
    """
    try:
        search_index = importlib.import_module("bot.codes.search_index")
    except ImportError as exc:
        if exc.name != "bot.codes.search_index":
            raise
        progress("  search index module not available; CPT codes are findable by code only")
        return
    progress("  updating search index ...")
    # As in the build: the index builder makes ~200k long-lived objects; the cyclic GC
    # rescanning them would double its time.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        search_index.build_search_index(conn, progress)
    finally:
        if was_enabled:
            gc.enable()
