"""Releases of each code set, their effective date ranges, and which one is in force on a day.

ICD-10-CM and ICD-10-PCS change every October 1 (fiscal year FY2027 = 2026-10-01 to
2027-09-30), sometimes with an April 1 update; HCPCS Level II changes every quarter. The code
database holds several releases per code set side by side (`releases` table) and stores only
what differs between them (`code_spans`: each state a code had and from when to when it held;
`code_changes`: what each release added, deleted and revised). The `codes` table is the newest
release held, plus the codes that only older releases had (status `deleted`).

Release ids are what users type: `FY2027`, `FY2026` (ICD-10), `FY2025-04` (an April update),
`2026-01` (an HCPCS quarter).
"""

from __future__ import annotations

import json
import sqlite3
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

#: ICD-10 replaced ICD-9 in the US for dates of service from this day.
ICD10_START = date(2015, 10, 1)

RELEASES_DDL = """
CREATE TABLE IF NOT EXISTS releases (
    system         TEXT NOT NULL,        -- icd10cm | icd10pcs | hcpcs
    release        TEXT NOT NULL,        -- FY2027, FY2025-04, 2026-01
    title          TEXT NOT NULL,        -- "FY2027", "FY2025 April 1, 2025 update"
    effective_from TEXT NOT NULL,        -- ISO date, first day in force
    effective_to   TEXT,                 -- ISO date, last day in force; NULL: still in force
    source         TEXT NOT NULL,
    counts         TEXT NOT NULL DEFAULT '{}',  -- JSON: {"billable": n, "added": n, ...}
    notes_release  TEXT NOT NULL DEFAULT '',    -- the release whose notes cards show
    PRIMARY KEY (system, release)
);
CREATE TABLE IF NOT EXISTS code_spans (
    system        TEXT NOT NULL,
    key           TEXT NOT NULL,
    code          TEXT NOT NULL,
    valid_from    TEXT,                  -- NULL: already valid in the first release held
    valid_to      TEXT,                  -- NULL: still valid in the newest release held
    first_release TEXT NOT NULL,
    last_release  TEXT NOT NULL,
    title         TEXT NOT NULL,
    billable      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS code_changes (
    system   TEXT NOT NULL,
    release  TEXT NOT NULL,
    change   TEXT NOT NULL,              -- added | deleted | revised
    seq      INTEGER NOT NULL,           -- order within the release (code order)
    key      TEXT NOT NULL,
    code     TEXT NOT NULL,
    title    TEXT NOT NULL,
    old_title TEXT NOT NULL DEFAULT '',
    replaced_by TEXT NOT NULL DEFAULT '' -- codes named as replacements (space-separated)
);
CREATE INDEX IF NOT EXISTS code_spans_key ON code_spans(key, system);
CREATE INDEX IF NOT EXISTS code_changes_release ON code_changes(system, release, change, seq);
"""


@dataclass(frozen=True)
class Release:
    """One release of one code set and the days it is in force (`effective_to` None: open)."""

    system: str
    release: str
    title: str
    effective_from: date
    effective_to: date | None
    source: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    notes_release: str = ""

    def covers(self, day: date) -> bool:
        """True when this release is the one in force on `day`."""
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    def with_counts(self, counts: dict[str, int]) -> Release:
        """This release with `counts` (what a diff of the release's snapshots found)."""
        return replace(self, counts=counts)

    @property
    def range_label(self) -> str:
        """`2026-10-01 to 2027-09-30`, or `from 2026-01-01` while still in force."""
        if self.effective_to is None:
            return f"from {self.effective_from.isoformat()}"
        return f"{self.effective_from.isoformat()} to {self.effective_to.isoformat()}"


def write_releases(conn: sqlite3.Connection, releases: list[Release]) -> None:
    """Insert release rows (the builder calls this once per code set)."""
    conn.executemany(
        "INSERT OR REPLACE INTO releases (system, release, title, effective_from, effective_to,"
        " source, counts, notes_release) VALUES (?,?,?,?,?,?,?,?)",
        [
            (
                r.system,
                r.release,
                r.title,
                r.effective_from.isoformat(),
                r.effective_to.isoformat() if r.effective_to else None,
                r.source,
                json.dumps(r.counts),
                r.notes_release,
            )
            for r in releases
        ],
    )


def write_history(
    conn: sqlite3.Connection,
    releases: list[Release],
    spans: list[tuple[object, ...]],
    changes: list[tuple[object, ...]],
) -> None:
    """Write one code set's releases, code spans and change rows (the builder's one call)."""
    write_releases(conn, releases)
    conn.executemany(
        "INSERT INTO code_spans (system, key, code, valid_from, valid_to, first_release,"
        " last_release, title, billable) VALUES (?,?,?,?,?,?,?,?,?)",
        spans,
    )
    conn.executemany(
        "INSERT INTO code_changes (system, release, change, seq, key, code, title, old_title,"
        " replaced_by) VALUES (?,?,?,?,?,?,?,?,?)",
        changes,
    )


def read_releases(conn: sqlite3.Connection) -> list[Release]:
    """Every release in an open database, per system oldest first ([] for an old database)."""
    try:
        rows = conn.execute(
            "SELECT system, release, title, effective_from, effective_to, source, counts,"
            " notes_release FROM releases ORDER BY system, effective_from"
        ).fetchall()
    except sqlite3.OperationalError:
        return []  # a database built before releases existed
    return [
        Release(
            system=system,
            release=release,
            title=title,
            effective_from=date.fromisoformat(start),
            effective_to=date.fromisoformat(end) if end else None,
            source=source,
            counts=json.loads(counts) if counts else {},
            notes_release=notes_release,
        )
        for system, release, title, start, end, source, counts, notes_release in rows
    ]


class ReleaseCalendar:
    """The releases of every code set, answering "which release was in force on this day"."""

    def __init__(self, releases: list[Release]) -> None:
        self._by_system: dict[str, list[Release]] = {}
        for release in sorted(releases, key=lambda r: (r.system, r.effective_from)):
            self._by_system.setdefault(release.system, []).append(release)
        self._starts = {
            system: [r.effective_from for r in held] for system, held in self._by_system.items()
        }

    def releases(self, system: str) -> list[Release]:
        """Releases of one code set, oldest first."""
        return list(self._by_system.get(system, ()))

    def newest(self, system: str) -> Release | None:
        """The newest release held of a code set."""
        held = self._by_system.get(system)
        return held[-1] if held else None

    def oldest(self, system: str) -> Release | None:
        """The oldest release held of a code set."""
        held = self._by_system.get(system)
        return held[0] if held else None

    def in_force(self, system: str, day: date) -> Release | None:
        """The release in force on `day`; None before the oldest release held.

        After the newest release's last day (a date in a future fiscal year we do not hold),
        the newest release answers: it is the best knowledge there is.
        """
        held = self._by_system.get(system)
        if not held:
            return None
        index = bisect_right(self._starts[system], day) - 1
        if index < 0:
            return None
        return held[index]

    def find(self, system: str, release: str) -> Release | None:
        """A release by id, case-insensitive (`fy2027`, `FY2025-04`, `2026-01`)."""
        wanted = release.strip().upper()
        for held in self._by_system.get(system, ()):
            if held.release.upper() == wanted:
                return held
        if wanted.isdigit() and len(wanted) == 4:  # "2027" -> FY2027
            return self.find(system, f"FY{wanted}")
        return None

    def is_head(self, system: str, day: date) -> bool:
        """True when `day` falls in the newest release held (the `codes` table as built)."""
        newest = self.newest(system)
        return newest is None or day >= newest.effective_from


_SYSTEM_LABELS = {"icd10cm": "ICD-10-CM", "icd10pcs": "ICD-10-PCS", "hcpcs": "HCPCS Level II"}
# Said where the newest release held is still open-ended (no later file is reachable).
_OPEN_NOTES = {
    "hcpcs": "HCPCS is as of 2026-01-01: later quarterly updates are not in this database",
}


def database_releases(path: Path) -> list[Release]:
    """The releases in the code database at `path` ([] when there is none)."""
    if not Path(path).is_file():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return read_releases(conn)
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def describe_releases(releases: list[Release], today: date) -> list[str]:
    """`data status` lines: every release per code set, its dates, the one in force today."""
    calendar = ReleaseCalendar(releases)
    lines: list[str] = []
    for system in ("icd10cm", "icd10pcs", "hcpcs"):
        held = calendar.releases(system)
        if not held:
            continue
        in_force = calendar.in_force(system, today)
        lines.append(f"{_SYSTEM_LABELS[system]} releases held ({len(held)}):")
        for release in reversed(held):
            mark = "  <- in force today" if release is in_force else ""
            counts = ", ".join(f"{name} {value:,}" for name, value in release.counts.items())
            lines.append(
                f"  {release.release:<10} {release.range_label:<26} {release.title}"
                f"{' (' + counts + ')' if counts else ''}{mark}"
            )
        if system in _OPEN_NOTES:
            lines.append(f"  note: {_OPEN_NOTES[system]}")
    return lines
