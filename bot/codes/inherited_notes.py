"""The instructional notes that apply to an ICD-10-CM code: its own and every ancestor's.

Tabular convention: a note at a chapter, block, category or subcategory applies to every
code below it. A coder looking at I10 must see its block's "Excludes1 neonatal hypertension"
and at S72.001A chapter 19's "Use secondary code(s) from Chapter 20", so a card carries its
own notes first, then each ancestor's from the nearest to the chapter, every inherited line
tagged with where it comes from (`[E11]`, `[I10-I1A]`, `[ch. 19]`).

A 7-character code (S72.001A) also gets the whole 7th-character table of the nearest
definition above it, with its own character marked, so the coder sees the alternatives.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

# Note kinds that ICD-10-CM applies to every code below the one carrying them. Inclusion
# terms describe one code only; 7th-character notes are handled on their own.
INHERITED_NOTE_KEYS = (
    "includes",
    "excludes1",
    "excludes2",
    "code_first",
    "use_additional_code",
    "code_also",
    "notes",
)
OWN_CHARACTER_MARK = " (this code)"
_CACHE_LIMIT = 5_000


class _Ancestor:
    """What one ancestor row contributes: tagged notes and its 7th-character table."""

    __slots__ = ("notes", "seven")

    def __init__(self, notes: dict[str, list[str]], seven: list[str]) -> None:
        self.notes = notes
        self.seven = seven


class NoteInheritance:
    """Collects inherited notes over a code database connection, caching each ancestor."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._ancestors: dict[int, _Ancestor] = {}

    def clear(self) -> None:
        """Forget cached ancestors (the database changed)."""
        self._ancestors.clear()

    def notes(
        self, details: dict[str, Any], ancestor_ids: Sequence[int]
    ) -> dict[str, tuple[str, ...]]:
        """A code's own notes, then each ancestor's (nearest first), and its 7th-char table.

        `details` is the code's stored details; `ancestor_ids` its ancestors' row ids from
        the parent up to the chapter.
        """
        notes: dict[str, list[str]] = {
            key: list(values) for key, values in details.get("notes", {}).items()
        }
        needs_table = "seven_chr_def" not in notes and (
            "seventh" in details or "seven_chr_note" in notes
        )
        for ancestor_id in ancestor_ids:
            ancestor = self._ancestor(ancestor_id)
            for key, values in ancestor.notes.items():
                notes.setdefault(key, []).extend(values)
            if needs_table and ancestor.seven:
                notes["seven_chr_def"] = _marked(ancestor.seven, details.get("seventh", ""))
                needs_table = False
        return {key: tuple(values) for key, values in notes.items() if values}

    def _ancestor(self, row_id: int) -> _Ancestor:
        cached = self._ancestors.get(row_id)
        if cached is not None:
            return cached
        kind, code, raw = self._conn.execute(
            "SELECT kind, code, details FROM codes WHERE id = ?", (row_id,)
        ).fetchone()
        own: dict[str, list[str]] = {}
        if raw and raw != "{}":
            own = json.loads(raw).get("notes", {})
        tag = f"[ch. {code}]" if kind == "chapter" else f"[{code}]"
        inherited = {
            key: [f"{line} {tag}" for line in own[key]]
            for key in INHERITED_NOTE_KEYS
            if own.get(key)
        }
        ancestor = _Ancestor(inherited, list(own.get("seven_chr_def", ())))
        if len(self._ancestors) > _CACHE_LIMIT:
            self._ancestors.clear()
        self._ancestors[row_id] = ancestor
        return ancestor


def _marked(table: list[str], own_character: str) -> list[str]:
    """The table lines ("A: initial encounter"), the code's own character marked."""
    if not own_character:
        return list(table)
    prefix = f"{own_character}:"
    return [line + OWN_CHARACTER_MARK if line.startswith(prefix) else line for line in table]
