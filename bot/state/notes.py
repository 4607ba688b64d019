"""Matching stored team notes to the cards of an answer (shared by every store).

Notes are keyed by (system, code key). A note stored without a resolver has system ''
and matches its code key in any code set; an exact (system, code key) note wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.ports import TeamNote

# (system, code_key, text, author_name) as read from the notes table
NoteRow = tuple[str, str, str, str]


def match_notes(
    wanted: Mapping[tuple[str, str], tuple[str, str]], rows: Iterable[NoteRow]
) -> dict[tuple[str, str], TeamNote]:
    """Map each wanted (system, code key) -> its (system, display code) and the note on it."""
    exact: dict[tuple[str, str], NoteRow] = {}
    loose: dict[str, NoteRow] = {}
    for row in rows:
        if row[0]:
            exact[(row[0], row[1])] = row
        else:
            loose[row[1]] = row
    if not exact and not loose:  # the usual case: no note on any of these codes
        return {}
    notes: dict[tuple[str, str], TeamNote] = {}
    for (system, code_key), original in wanted.items():
        found = exact.get((system, code_key)) or loose.get(code_key)
        if found is not None:
            notes[original] = TeamNote(found[2], found[3])
    return notes
