"""`/code history CODE` and `/code changes SET RELEASE`: a code's timeline and a release's changes.

Both read what the build stored between releases (bot/codes/releases.py): the code's spans
and the release's change rows. The texts are plain; adapters lay them out.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import timedelta

from bot.codes.dated import Span
from bot.codes.releases import Release, ReleaseCalendar
from bot.model import CodeCard

FIRST_ENTRIES = 5  # per change kind, in the short answer
FULL_LIST_MAX = 2_000  # codes per change kind in the full list (the CLI's --json has all)


def history_lines(card: CodeCard, spans: list[Span], calendar: ReleaseCalendar) -> list[str]:
    """The timeline of one code across every release held, oldest first."""
    system = card.system.value
    held = calendar.releases(system)
    if not held:
        return [f"{card.code}: {card.system.label} keeps no release history."]
    oldest, newest = held[0], held[-1]
    lines = [
        f"{card.code} ({card.system.label}) across the releases held, "
        f"{oldest.release} to {newest.release}:"
    ]
    if not spans:
        state = "billable" if card.billable else f"not billable ({card.kind})"
        if card.status == "terminated":
            state = f"terminated {card.effective.get('terminated', '')}".strip()
        lines.append(
            f"• {oldest.release}–{newest.release} (from {oldest.effective_from.isoformat()} or"
            f" earlier): {state} — {card.title}"
        )
        lines.extend(f"• {line}" for line in _hcpcs_dates(card))
        return lines
    for span in spans:
        start = (
            span.valid_from.isoformat()
            if span.valid_from
            else (f"{oldest.effective_from.isoformat()} or earlier")
        )
        end = span.valid_to.isoformat() if span.valid_to else "today"
        releases = (
            span.first_release
            if span.first_release == span.last_release
            else f"{span.first_release}–{span.last_release}"
        )
        state = "billable" if span.billable else "header (not billable)"
        lines.append(f"• {releases} ({start} to {end}): {state} — {span.title}")
    last = spans[-1]
    if last.valid_to is not None:
        lines.append(
            f"• not valid from {(last.valid_to + timedelta(days=1)).isoformat()}: deleted"
            f" after {last.last_release}"
        )
    elif not last.billable and card.children:
        codes = ", ".join(child.code for child in card.children[:8])
        more = len(card.children) > 8
        lines.append(f"• now: use a code below it: {codes}{', …' if more else ''}")
    lines.extend(f"• {line}" for line in card.history if line.startswith("deleted"))
    return lines


def _hcpcs_dates(card: CodeCard) -> list[str]:
    dates = card.effective
    out = []
    if dates.get("added"):
        out.append(f"added {dates['added']}")
    if dates.get("terminated"):
        out.append(f"terminated {dates['terminated']}")
    return out


@dataclass(frozen=True)
class ChangeEntry:
    """One changed code of a release."""

    change: str  # added | deleted | revised
    code: str
    title: str
    old_title: str = ""
    replaced_by: str = ""


@dataclass(frozen=True)
class ReleaseChanges:
    """What a release changed against the one before it."""

    release: Release
    previous: Release | None
    counts: dict[str, int]
    entries: tuple[ChangeEntry, ...]


def read_changes(
    conn: sqlite3.Connection, release: Release, previous: Release | None, per_kind: int
) -> ReleaseChanges:
    """Counts and the first `per_kind` entries of each change kind, in code order."""
    counts = {"added": 0, "deleted": 0, "revised": 0}
    for change, number in conn.execute(
        "SELECT change, count(*) FROM code_changes WHERE system = ? AND release = ?"
        " GROUP BY change",
        (release.system, release.release),
    ):
        counts[change] = number
    entries: list[ChangeEntry] = []
    for change in ("added", "deleted", "revised"):
        entries.extend(
            ChangeEntry(change, code, title, old_title, replaced_by)
            for code, title, old_title, replaced_by in conn.execute(
                "SELECT code, title, old_title, replaced_by FROM code_changes"
                " WHERE system = ? AND release = ? AND change = ? ORDER BY seq LIMIT ?",
                (release.system, release.release, change, per_kind),
            )
        )
    return ReleaseChanges(release, previous, counts, tuple(entries))


_HEADINGS = {"added": "New", "deleted": "Deleted", "revised": "Revised"}


def changes_text(changes: ReleaseChanges, label: str, *, full: bool) -> str:
    """The answer to `/code changes …`: counts, then the first (or all) entries of each kind."""
    release, previous = changes.release, changes.previous
    against = f" against {previous.release}" if previous else ""
    counts = changes.counts
    lines = [
        f"{label} {release.release} ({release.title}; in force {release.range_label}){against}: "
        f"{counts['added']:,} new, {counts['deleted']:,} deleted, {counts['revised']:,} revised"
        " billable codes."
    ]
    if previous is None:
        lines.append("This is the oldest release held: there is nothing before it to compare.")
    for change in ("added", "deleted", "revised"):
        entries = [e for e in changes.entries if e.change == change]
        if not entries:
            continue
        total = counts[change]
        if full:
            lines.append(f"{_HEADINGS[change]} ({total:,}):")
            if change == "revised":
                lines.extend(f"  {e.code} {e.title} (was: {e.old_title})" for e in entries)
            else:
                lines.append("  " + ", ".join(_entry_code(e) for e in entries))
            continue
        lines.append(f"{_HEADINGS[change]} ({total:,}), first {len(entries)}:")
        for entry in entries:
            line = f"  {entry.code} {entry.title}"
            if entry.old_title:
                line += f" (was: {entry.old_title})"
            if entry.replaced_by:
                line += f" → use {entry.replaced_by}"
            lines.append(line)
    return "\n".join(lines)


def _entry_code(entry: ChangeEntry) -> str:
    return f"{entry.code} → {entry.replaced_by}" if entry.replaced_by else entry.code
