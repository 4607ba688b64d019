"""Cards as of a date: the state a code had in the release in force that day, and its history.

The `codes` table holds the newest release. A code whose title or billable status changed, or
that was added or deleted within the releases held, has `code_spans` rows (one per state, with
the days it held). `DatedView` overlays the span covering the asked day on the card and writes
the history lines every card shows ("new in FY2027", "title revised FY2027 (was: …)",
"billable until FY2026").
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import dataclass, replace
from datetime import date, timedelta

from bot.codes.normalize import normalize_code
from bot.codes.releases import ICD10_START, Release, ReleaseCalendar
from bot.model import CodeCard, CodeRef, CodeSystem

ICD10_SYSTEMS = frozenset({CodeSystem.ICD10CM.value, CodeSystem.ICD10PCS.value})


@dataclass(frozen=True, slots=True)
class Span:
    """One state of a code and the days it held (None ends: beyond the releases held)."""

    valid_from: date | None
    valid_to: date | None
    first_release: str
    last_release: str
    title: str
    billable: bool

    def covers(self, day: date) -> bool:
        """True when the code was in this state on `day`."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


def _iso(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _same_title(a: str, b: str) -> bool:
    """Titles equal but for case, spacing and punctuation (sources format them differently)."""
    return _plain(a) == _plain(b)


def _plain(title: str) -> str:
    return "".join(ch for ch in title.lower() if ch.isalnum())


class DatedView:
    """Reads spans and applies them to cards. Uses the catalog's connection (caller locks)."""

    def __init__(self, conn: sqlite3.Connection, calendar: ReleaseCalendar) -> None:
        self._conn = conn
        self.calendar = calendar

    def spans(self, system: str, key: str) -> list[Span]:
        """The stored states of one code, oldest first ([] when it never changed)."""
        rows = self._conn.execute(
            "SELECT valid_from, valid_to, first_release, last_release, title, billable"
            " FROM code_spans WHERE key = ? AND system = ? ORDER BY coalesce(valid_from, '')",
            (key, system),
        ).fetchall()
        return [
            Span(_iso(start), _iso(end), first, last, title, bool(billable))
            for start, end, first, last, title, billable in rows
        ]

    def replaced_by(self, system: str, key: str) -> str:
        """The codes a release named as replacing a deleted code ('' when none is named)."""
        row = self._conn.execute(
            "SELECT replaced_by FROM code_changes WHERE system = ? AND key = ? AND change ="
            " 'deleted' AND replaced_by != '' ORDER BY release DESC LIMIT 1",
            (system, key),
        ).fetchone()
        return row[0] if row else ""

    def valid_on(self, refs: list[tuple[str, str]], day: date) -> list[bool]:
        """For each (system, display code): did the code exist (billable or header) on `day`?"""
        keys = sorted({normalize_code(code) for _system, code in refs})
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        status = {
            (system, key): state
            for system, key, state in self._conn.execute(
                f"SELECT system, key, status FROM codes WHERE key IN ({marks})", keys
            )
        }
        covered: dict[tuple[str, str], bool] = {}
        for system, key, start, end in self._conn.execute(
            f"SELECT system, key, valid_from, valid_to FROM code_spans WHERE key IN ({marks})",
            keys,
        ):
            span = Span(_iso(start), _iso(end), "", "", "", False)
            covered[(system, key)] = covered.get((system, key), False) or span.covers(day)
        out = []
        for system, code in refs:
            ident = (system, normalize_code(code))
            if ident in covered:
                out.append(covered[ident])
            else:
                out.append(status.get(ident) not in ("deleted", "terminated"))
        return out

    def apply(self, card: CodeCard, day: date | None) -> CodeCard:
        """The card as of `day` (None: the newest release held), with its history lines."""
        system = card.system.value
        newest = self.calendar.newest(system)
        if newest is None:
            return card  # CPT imports and old databases carry no releases
        key = normalize_code(card.code) if card.kind not in ("chapter",) else ""
        spans = self.spans(system, key) if key else []
        history = tuple(self._history(system, card, spans))
        release = self.calendar.in_force(system, day) if day is not None else newest
        effective = dict(card.effective)
        if release is None:
            oldest = self.calendar.oldest(system)
            release = oldest if oldest is not None else newest
            history = (
                f"{day.isoformat() if day else ''}: before the oldest {card.system.label} release"
                f" held ({release.release}, from {release.effective_from.isoformat()});"
                f" shown as in {release.release}",
                *history,
            )
        effective["release"] = release.release
        source = card.source
        if newest.notes_release:
            source = {**source, "notes_release": newest.notes_release}
        dated = replace(
            card, effective=effective, history=history, as_of=_iso_or_empty(day), source=source
        )
        if day is None:
            return dated
        if not spans:
            return _by_record_dates(dated, day)
        return self._at(dated, spans, day, release)

    def _at(self, card: CodeCard, spans: list[Span], day: date, release: Release) -> CodeCard:
        """Overlay the span in force on `day`, or mark the card not valid that day."""
        span = next((s for s in spans if s.covers(day)), None)
        if span is None:
            return self._not_valid(card, spans, day)
        kind = card.kind
        if card.system is CodeSystem.ICD10CM and kind in ("code", "subcategory"):
            kind = "code" if span.billable else "subcategory"
        children = self._children_valid_on(card, day)
        return replace(
            card,
            title=span.title,
            billable=span.billable,
            kind=kind,
            status="active",
            children=children,
            children_total=len(children)
            if len(children) != len(card.children)
            else card.children_total,
        )

    def _not_valid(self, card: CodeCard, spans: list[Span], day: date) -> CodeCard:
        first, last = spans[0], spans[-1]
        effective = dict(card.effective)
        if first.valid_from is not None and day < first.valid_from:
            effective["valid_from"] = first.valid_from.isoformat()
            return replace(card, status="not_yet_valid", billable=False, effective=effective)
        status = "terminated" if card.status == "terminated" else "not_valid"
        if last.valid_to is not None and status != "terminated":
            effective["valid_to"] = last.valid_to.isoformat()
        return replace(card, status=status, billable=False, effective=effective)

    def _children_valid_on(self, card: CodeCard, day: date) -> tuple[CodeRef, ...]:
        """The card's children that existed on `day` (children added later are dropped)."""
        if not card.children:
            return card.children
        keys = [normalize_code(child.code) for child in card.children]
        marks = ",".join("?" * len(keys))
        rows = self._conn.execute(
            "SELECT key, valid_from, valid_to FROM code_spans"
            f" WHERE system = ? AND key IN ({marks})",
            (card.system.value, *keys),
        ).fetchall()
        if not rows:
            return card.children
        valid: dict[str, bool] = {}
        for key, start, end in rows:
            span = Span(_iso(start), _iso(end), "", "", "", False)
            valid[key] = valid.get(key, False) or span.covers(day)
        return tuple(
            child for child, key in zip(card.children, keys, strict=True) if valid.get(key, True)
        )

    def _history(self, system: str, card: CodeCard, spans: list[Span]) -> list[str]:
        """Plain-language timeline lines of one code across the releases held."""
        lines: list[str] = _record_dates(card)
        if not spans:
            return lines
        # HCPCS records say when they were added and terminated: those lines say it already.
        own_dates = bool(lines)
        first = spans[0]
        if first.valid_from is not None and not own_dates:
            lines.append(f"new in {first.first_release} ({first.valid_from.isoformat()})")
        for before, after in itertools.pairwise(spans):
            if before.billable and not after.billable:
                line = (
                    f"billable until {before.last_release}; a header with codes below it"
                    f" since {after.first_release}"
                )
                replacement = self.replaced_by(system, normalize_code(card.code))
                lines.append(f"{line} → use {replacement}" if replacement else line)
            elif after.billable and not before.billable:
                lines.append(f"billable since {after.first_release} (a header before)")
            if not _same_title(before.title, after.title):
                lines.append(f"title revised {after.first_release} (was: {before.title})")
        last = spans[-1]
        if last.valid_to is not None and not (own_dates and card.effective.get("terminated")):
            ended = (last.valid_to + timedelta(days=1)).isoformat()
            line = (
                f"deleted {ended}: valid through {last.valid_to.isoformat()} ({last.last_release})"
            )
            replacement = self.replaced_by(system, normalize_code(card.code))
            if card.system is CodeSystem.HCPCS:
                line = f"terminated {last.valid_to.isoformat()} (last quarter {last.last_release})"
            if replacement:
                line += f" → use {replacement}"
            lines.append(line)
        return lines


def _record_dates(card: CodeCard) -> list[str]:
    """HCPCS records carry their own dates: "added 2025-10-01", "terminated … → use …"."""
    if card.system is not CodeSystem.HCPCS:
        return []
    dates = card.effective
    lines = [f"added {dates['added']}"] if dates.get("added") else []
    if dates.get("terminated"):
        line = f"terminated {dates['terminated']}"
        if dates.get("replaced_by"):
            line += f" → use {dates['replaced_by']}"
        lines.append(line)
    return lines


def _by_record_dates(card: CodeCard, day: date) -> CodeCard:
    """A code with no change between the releases held, on a day outside them: its record's
    add and termination dates (HCPCS) say whether it was valid."""
    added = card.effective.get("added", "")
    ended = card.effective.get("terminated", "")
    iso = day.isoformat()
    if added and iso < added:
        effective = {**card.effective, "valid_from": added}
        return replace(card, status="not_yet_valid", billable=False, effective=effective)
    if ended and iso <= ended and card.status == "terminated":
        return replace(card, status="active", billable=card.kind != "modifier")
    return card


def before_icd10(system: str, day: date | None) -> bool:
    """True for an ICD-10 code asked about a day when ICD-9-CM was still in use."""
    return day is not None and system in ICD10_SYSTEMS and day < ICD10_START


def _iso_or_empty(day: date | None) -> str:
    return day.isoformat() if day else ""
