"""HCPCS Level II, January 2026, from the CMS fixed-width "ANWEB" file.

Each code or modifier has a first record (RECID 3 for codes, 7 for modifiers) with all
administrative fields, followed by continuation records (RECID 4 / 8) carrying the rest of
the long description. Field positions are those of the CMS record layout
(`data/hcpcs/HCPC2026_recordlayout.txt`); the meanings of coded fields (coverage, pricing
indicator, BETOS, type of service, action code) are read from that same layout file so the
cards show CMS's own wording, and processing-note numbers are resolved against
`proc_notes_JAN2026.txt`.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bot.codes.sources import DATA_DIR, CodeRow, SourceData, make_details

SYSTEM = "hcpcs"
LABEL = "HCPCS Level II"
RELEASE = "2026-01"
RELEASE_EFFECTIVE = date(2026, 1, 1)
CODES_FILE = "HCPC2026_JAN_ANWEB_01122026.txt.gz"
LAYOUT_FILE = "HCPC2026_recordlayout.txt"
NOTES_FILE = "proc_notes_JAN2026.txt"

# The standard HCPCS Level II sections by first letter (D, dental/CDT, is deliberately absent).
SECTIONS: dict[str, str] = {
    "A": "Transportation services including ambulance, medical and surgical supplies",
    "B": "Enteral and parenteral therapy",
    "C": "Outpatient prospective payment system (temporary codes)",
    "E": "Durable medical equipment",
    "G": "Procedures and professional services (temporary codes)",
    "H": "Alcohol and drug abuse treatment services, rehabilitative services",
    "J": "Drugs administered other than oral method, chemotherapy drugs",
    "K": "Temporary codes for durable medical equipment",
    "L": "Orthotic and prosthetic procedures and devices",
    "M": "Medical services and quality measures",
    "P": "Pathology and laboratory services",
    "Q": "Miscellaneous services (temporary codes)",
    "R": "Diagnostic radiology services",
    "S": "Temporary national codes (non-Medicare)",
    "T": "National codes established for state Medicaid agencies",
    "U": "Coronavirus laboratory tests",
    "V": "Vision, hearing and speech-language pathology services",
}
MODIFIERS_CODE = "Modifiers"


@dataclass(slots=True)
class _Record:
    """One code or modifier with its continuation lines joined."""

    code: str
    is_modifier: bool
    first: str
    description: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Layout:
    """Code meanings from the record layout file: field name -> value -> meaning."""

    coverage: dict[str, str]
    pricing: dict[str, str]
    betos: dict[str, str]
    type_of_service: dict[str, str]
    action: dict[str, str]


_CODE_LINE = re.compile(r"^(\s*)([0-9A-Z]{1,3})\s*=\s*(.+?)\s*$")


def _code_table(lines: list[str]) -> dict[str, str]:
    """Parse `CODE = meaning` lines, joining deeper-indented continuation lines."""
    table: dict[str, str] = {}
    current: str | None = None
    indent = 0
    for raw in lines:
        line = raw.expandtabs(8).rstrip()
        match = _CODE_LINE.match(line)
        if match:
            current, indent = match.group(2), len(match.group(1))
            table[current] = match.group(3)
            continue
        stripped = line.strip()
        if not stripped or set(stripped) <= {"-"}:
            continue
        if current is not None and len(line) - len(line.lstrip()) > indent:
            table[current] = f"{table[current]} {stripped}"
        else:
            # A sub-heading (e.g. "Clinical Lab Fee Schedule") ends the previous entry.
            current = None
    return table


def _between(lines: list[str], start: str, end: str | None) -> list[str]:
    """Lines after the first one containing `start`, up to the next containing `end`."""
    out: list[str] = []
    inside = False
    for line in lines:
        if not inside:
            inside = start in line
            continue
        if end is not None and end in line:
            break
        out.append(line)
    return out


def read_layout(path: Path) -> Layout:
    """Read the coded-field meanings from the CMS record layout text."""
    lines = path.read_text(encoding="latin-1").splitlines()

    def codes_of(start: str, end: str | None) -> list[str]:
        # Only the part after "CODES :" lists values; the rest is prose.
        return _between(_between(lines, start, end), "CODES", None)

    return Layout(
        coverage=_code_table(codes_of("HCPCS Coverage Code", "HCPCS ASC Payment Group Code")),
        pricing=_code_table(codes_of("HCPCS Pricing Indicator Code", "HCPCS Multiple Pricing")),
        # The code tables sit in the appendix, titled "BETOS Table" / "CMS Type of Service
        # Table"; the bare table names also occur earlier, inside the field entries.
        betos=_code_table(_between(lines, "BETOS Table", "CMS Type of Service Table")),
        type_of_service=_code_table(_between(lines, "CMS Type of Service Table", None)),
        action=_code_table(codes_of("HCPCS Action Code", "31.  FILLER")),
    )


_NOTE_START = re.compile(r"^\s*(\d{4})--(.*)$")


def read_processing_notes(path: Path) -> dict[str, str]:
    """Processing note number ("0088") -> its text, continuation lines joined."""
    notes: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in path.read_text(encoding="latin-1").splitlines():
        # Each line ends in a margin "*" in the CMS file; it is layout, not text.
        line = raw.rstrip().rstrip("*").strip()
        match = _NOTE_START.match(line)
        if match:
            current = notes.setdefault(match.group(1), [])
            current.append(match.group(2).strip())
        elif line and current is not None and not set(line) <= {"_"}:
            current.append(line)
    return {number: " ".join(" ".join(parts).split()) for number, parts in notes.items()}


def _iso(yyyymmdd: str) -> str:
    """20251231 -> 2025-12-31; blank stays blank."""
    value = yyyymmdd.strip()
    if len(value) != 8 or not value.isdigit():
        return ""
    return f"{value[:4]}-{value[4:6]}-{value[6:]}"


def _read_records(path: Path) -> list[_Record]:
    """Group the fixed-width records into codes and modifiers with full descriptions."""
    records: list[_Record] = []
    by_code: dict[tuple[bool, str], _Record] = {}
    with gzip.open(path, "rt", encoding="latin-1") as fh:
        for raw in fh:
            line = raw.rstrip("\r\n")
            if len(line) < 11 or not line.strip():
                continue
            recid = line[10]
            is_modifier = recid in "78"
            if recid not in "3478":
                raise ValueError(f"unknown HCPCS record id {recid!r} in {line[:11]!r}")
            code = line[3:5] if is_modifier else line[0:5]
            text = line[11:91].strip()
            if recid in "37":
                record = _Record(code, is_modifier, line.ljust(320))
                records.append(record)
                by_code[(is_modifier, code)] = record
            else:
                record = by_code[(is_modifier, code)]
            if text:
                record.description.append(text)
    return records


def _meaning(value: str, table: dict[str, str]) -> str:
    """`value: meaning` when the layout defines it, else the bare value."""
    meaning = table.get(value)
    return f"{value}: {meaning}" if meaning else value


def load(data_dir: Path | None = None) -> SourceData:
    """Read the HCPCS Level II file into rows (letter sections, codes, modifiers)."""
    folder = (data_dir or DATA_DIR) / "hcpcs"
    layout = read_layout(folder / LAYOUT_FILE)
    proc_notes = read_processing_notes(folder / NOTES_FILE)
    records = _read_records(folder / CODES_FILE)
    codes = sorted((r for r in records if not r.is_modifier), key=lambda r: r.code)
    modifiers = sorted((r for r in records if r.is_modifier), key=lambda r: r.code)
    release_iso = RELEASE_EFFECTIVE.isoformat()

    rows: list[CodeRow] = []
    for letter in sorted({r.code[0] for r in codes}):
        rows.append(
            CodeRow(
                system=SYSTEM,
                code=letter,
                key=f"HCPCSSECTION{letter}",
                kind="section",
                title=SECTIONS.get(letter, f"{letter} codes"),
            )
        )
    rows.append(
        CodeRow(
            system=SYSTEM,
            code=MODIFIERS_CODE,
            key="HCPCSMODIFIERS",
            kind="section",
            title="HCPCS Level II modifiers",
        )
    )
    terminated = {"codes": 0, "modifiers": 0}
    titles = {(r.is_modifier, r.code): " ".join(" ".join(r.description).split()) for r in records}
    cross_referenced = 0
    for record in [*codes, *modifiers]:
        first = record.first
        added, effective, ended = _iso(first[268:276]), _iso(first[276:284]), _iso(first[284:292])
        # The termination date is the last day the code may be used; the layout's own
        # wording. A code whose last day is before this release's effective date is gone.
        is_terminated = bool(ended) and ended < release_iso
        dates = {"added": added, "effective": effective, "terminated": ended}
        if is_terminated and effective > ended:
            # the action date of the termination itself: "effective 2026-01-01, terminated
            # 2025-12-31" reads as nonsense; the last date of service says it all
            del dates["effective"]
        attributes: list[tuple[str, str]] = []
        # Field 15, HCPCS Cross Reference Code (5 x 5 characters from position 205): the
        # valid code to use for a deleted code or one not valid for Medicare.
        xrefs = [first[i : i + 5].strip() for i in range(204, 229, 5)]
        xrefs = [x for x in xrefs if x]
        cross_referenced += bool(xrefs)
        label = "Use instead" if is_terminated else "See"
        for target in xrefs:
            title = titles.get((record.is_modifier, target)) or titles.get((False, target), "")
            attributes.append((label, f"{target} {title}".strip()))
        coverage = first[229].strip()
        if coverage:
            attributes.append(("Coverage", _meaning(coverage, layout.coverage)))
        pricing = [first[i : i + 2].strip() for i in range(119, 127, 2)]
        for value in filter(None, pricing):
            attributes.append(("Pricing indicator", _meaning(value, layout.pricing)))
        betos = first[256:259].strip()
        if betos:
            attributes.append(("BETOS", _meaning(betos, layout.betos)))
        for value in filter(None, (ch.strip() for ch in first[260:265])):
            attributes.append(("Type of service", _meaning(value, layout.type_of_service)))
        asc_group = first[230:232].strip()
        if asc_group:
            attributes.append(("ASC payment group", asc_group))
        base_units = first[265:268].strip().lstrip("0")
        if base_units:
            attributes.append(("Anesthesia base units", base_units))
        action = first[292].strip()
        if action:
            attributes.append(("Action", _meaning(action, layout.action)))
        notes: dict[str, list[str]] = {}
        note_number = first[252:256].strip()
        if note_number:
            text = proc_notes.get(note_number)
            notes["processing_note"] = [f"{note_number}: {text}" if text else note_number]
        if is_terminated:
            terminated["modifiers" if record.is_modifier else "codes"] += 1
        rows.append(
            CodeRow(
                system=SYSTEM,
                code=record.code,
                key=record.code,
                kind="modifier" if record.is_modifier else "code",
                title=" ".join(" ".join(record.description).split()),
                short_title=first[91:119].strip(),
                # A modifier is never billed alone; a terminated code can no longer be billed.
                billable=not record.is_modifier and not is_terminated,
                status="terminated" if is_terminated else "active",
                parent=MODIFIERS_CODE if record.is_modifier else record.code[0],
                details=make_details(
                    notes=notes,
                    effective={k: v for k, v in dates.items() if v},
                    attributes=attributes,
                ),
            )
        )
    counts = {
        "codes": len(codes),
        "modifiers": len(modifiers),
        "billable": sum(1 for r in rows if r.billable),
        "terminated_codes": terminated["codes"],
        "terminated_modifiers": terminated["modifiers"],
        "cross_referenced": cross_referenced,
    }
    return SourceData(
        system=SYSTEM,
        label=LABEL,
        release=RELEASE,
        source=f"CMS HCPCS Level II {CODES_FILE[:-3]} (effective {release_iso})",
        rows=rows,
        counts=counts,
    )
