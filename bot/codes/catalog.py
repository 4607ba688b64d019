"""Exact code lookup over the built code database: codes -> `CodeCard`s, and "did you mean".

Opening is cheap (one read-only SQLite connection, nothing loaded eagerly) because the CLI
must start in well under a second and a half. Lookups are indexed queries by key; the few
rows every card repeats (chapters, blocks, sections) are cached in memory. The caches are
dropped when another process changes the file (an admin's CPT import), detected through
SQLite's `PRAGMA data_version`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import extract

from bot.codes.dated import DatedView
from bot.codes.inherited_notes import NoteInheritance
from bot.codes.manifestation import MANIFESTATION_KEY, MANIFESTATION_NOTE, is_manifestation
from bot.codes.normalize import normalize_code
from bot.codes.releases import ReleaseCalendar, read_releases
from bot.codes.timeline import (
    FIRST_ENTRIES,
    FULL_LIST_MAX,
    ReleaseChanges,
    history_lines,
    read_changes,
)
from bot.model import CodeCard, CodeRef, CodeSystem

MAX_CHILDREN = 50
PLACEHOLDER_FAMILY_LIMIT = 10  # T81.4XXA lists every T81.4?XA, more than the usual 5
# Display order of systems when one key exists in several (B00: ICD-10-CM and PCS).
SYSTEM_ORDER = {system.value: rank for rank, system in enumerate(CodeSystem)}
# Kinds that organise a code set but are not codes a coder can type or bill.
HEADER_KINDS = frozenset({"chapter", "block", "section", "body_system"})

_CARD_COLUMNS = "id, system, code, kind, title, short_title, billable, status, parent_id, details"


@dataclass(frozen=True)
class CodeSetStatus:
    """One code set in a database: its label, release, source and counts."""

    system: str
    label: str
    release: str
    source: str
    counts: dict[str, int]


def read_code_sets(conn: sqlite3.Connection) -> list[CodeSetStatus]:
    """The `code_sets` rows of an open database, in display order."""
    rows = conn.execute("SELECT system, label, release, source, counts FROM code_sets").fetchall()
    out = [
        CodeSetStatus(system, label, release, source, json.loads(counts) if counts else {})
        for system, label, release, source, counts in rows
    ]
    out.sort(key=lambda s: SYSTEM_ORDER.get(s.system, len(SYSTEM_ORDER)))
    return out


CARD_CACHE_SIZE = 4096  # finished cards kept per process (a few MB)


class CodeCatalog:
    """Read-only access to the code database. Safe to share between threads."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Wrap an open connection; use `CodeCatalog.open(path)` instead."""
        self._conn = conn
        self.path = path
        self._lock = threading.Lock()
        self._data_version = -1
        self._sets: dict[str, CodeSetStatus] = {}
        self._refs: dict[int, tuple[int | None, CodeRef]] = {}
        self._parent_attrs: dict[int, tuple[tuple[str, str], ...]] = {}
        self._inherited = NoteInheritance(conn)
        # Teams look the same few hundred codes up all day: keep their finished cards.
        self._cards: OrderedDict[tuple[str, bool, date | None], tuple[CodeCard, ...]] = (
            OrderedDict()
        )
        self._dated = DatedView(conn, ReleaseCalendar([]))
        self._prefix_keys: dict[str, list[str]] = {}

    @classmethod
    def open(cls, path: Path) -> CodeCatalog:
        """Open the database at `path` read-only (raises FileNotFoundError if not built)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"code database {path} not found; build it with `codebot data build`"
            )
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        return cls(conn, path)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ caches

    def _fresh(self) -> None:
        """Drop caches if another connection changed the database since we last looked."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self._sets = {s.system: s for s in read_code_sets(self._conn)}
            self._dated = DatedView(self._conn, ReleaseCalendar(read_releases(self._conn)))
            self._refs.clear()
            self._parent_attrs.clear()
            self._inherited.clear()
            self._cards.clear()
            self._prefix_keys.clear()

    def _ref(self, row_id: int) -> tuple[int | None, CodeRef]:
        """(parent id, CodeRef) of a row, cached: ancestors are shared by many cards."""
        hit = self._refs.get(row_id)
        if hit is not None:
            return hit
        system, code, title, billable, parent_id = self._conn.execute(
            "SELECT system, code, title, billable, parent_id FROM codes WHERE id = ?", (row_id,)
        ).fetchone()
        if len(self._refs) > 20_000:
            self._refs.clear()  # bounded; ancestors are re-read cheaply
        hit = (parent_id, CodeRef(CodeSystem(system), code, title, bool(billable)))
        self._refs[row_id] = hit
        return hit

    # ------------------------------------------------------------------ cards

    def _card(self, row: tuple[Any, ...]) -> CodeCard:
        """Assemble a card from a `_CARD_COLUMNS` row: parents, children, details."""
        row_id, system, code, kind, title, short_title, billable, status, parent_id, raw = row
        direct_parent = parent_id
        parents: list[CodeRef] = []
        ancestor_ids: list[int] = []
        while parent_id is not None:
            ancestor_ids.append(parent_id)
            parent_id, ref = self._ref(parent_id)
            parents.append(ref)
        parents.reverse()
        children = [
            CodeRef(CodeSystem(c_system), c_code, c_title, bool(c_billable))
            for c_system, c_code, c_title, c_billable in self._conn.execute(
                "SELECT system, code, title, billable FROM codes WHERE parent_id = ?"
                " ORDER BY sort_order LIMIT ?",
                (row_id, MAX_CHILDREN),
            )
        ]
        total = len(children)
        if total == MAX_CHILDREN:
            total = self._conn.execute(
                "SELECT count(*) FROM codes WHERE parent_id = ?", (row_id,)
            ).fetchone()[0]
        details: dict[str, Any] = json.loads(raw) if raw and raw != "{}" else {}
        code_set = self._sets.get(system)
        effective = dict(details.get("effective", {}))
        source: dict[str, str] = {}
        if code_set is not None:
            effective.setdefault("release", code_set.release)
            source = {
                "code_set": code_set.label,
                "release": code_set.release,
                "file": code_set.source,
            }
        source.update(details.get("source", {}))
        return CodeCard(
            system=CodeSystem(system),
            code=code,
            title=title,
            short_title=short_title,
            kind=kind,
            billable=bool(billable),
            status=status,
            parents=tuple(parents),
            children=tuple(children),
            children_total=total,
            notes=self._notes(system, details, ancestor_ids, title, parents),
            effective=effective,
            attributes=self._attributes(details, direct_parent),
            source=source,
        )

    def _notes(
        self,
        system: str,
        details: dict[str, Any],
        ancestor_ids: list[int],
        title: str,
        parents: list[CodeRef],
    ) -> dict[str, tuple[str, ...]]:
        """A code's notes; for ICD-10-CM with every ancestor's (`bot.codes.inherited_notes`)
        and the manifestation flag (`bot.codes.manifestation`)."""
        if system == CodeSystem.ICD10CM.value:
            notes = self._inherited.notes(details, ancestor_ids)
            # chapters have numeric codes and blocks a range: neither makes a manifestation
            ancestors = [
                (
                    "block" if "-" in p.code else "chapter" if p.code.isdigit() else "category",
                    p.title,
                )
                for p in parents
            ]
            if is_manifestation(title, ancestors, notes):
                return {MANIFESTATION_KEY: (MANIFESTATION_NOTE,), **notes}
            return notes
        return {key: tuple(values) for key, values in details.get("notes", {}).items() if values}

    def _attributes(
        self, details: dict[str, Any], parent_id: int | None
    ) -> tuple[tuple[str, str], ...]:
        """A row's attributes, after its parent's when the row says it inherits them."""
        own = tuple((str(a), str(b)) for a, b in details.get("attributes", ()))
        if not details.get("inherit_attributes") or parent_id is None:
            return own
        inherited = self._parent_attrs.get(parent_id)
        if inherited is None:
            (raw,) = self._conn.execute(
                "SELECT details FROM codes WHERE id = ?", (parent_id,)
            ).fetchone()
            inherited = self._attributes(json.loads(raw) if raw else {}, None)
            if len(self._parent_attrs) > 5_000:
                self._parent_attrs.clear()
            self._parent_attrs[parent_id] = inherited
        return inherited + own

    @property
    def calendar(self) -> ReleaseCalendar:
        """The releases held per code set (which one is in force on a day)."""
        with self._lock:
            self._fresh()
            return self._dated.calendar

    def lookup(self, raw: str, as_of: date | None = None) -> list[CodeCard]:
        """Every code whose key matches what the user typed (case, dot, space insensitive).

        `as_of` is the date of service: the card shows the release in force that day (title,
        billable status; not valid that day says so). None: the newest release held.

        A dotted input is an ICD-10-CM code only. Otherwise a key present in several code
        sets (B00: ICD-10-CM category and PCS table) returns one card per set, ICD-10-CM
        first. `-LT` and `LT` both find the modifier LT. Returns [] when nothing matches.
        """
        key = normalize_code(raw)
        if not key:
            return []
        cache_key = (key, "." in raw, as_of)
        with self._lock:
            self._fresh()
            cached = self._cards.get(cache_key)
            if cached is not None:
                self._cards.move_to_end(cache_key)
                return list(cached)
            rows = self._conn.execute(
                f"SELECT {_CARD_COLUMNS} FROM codes WHERE key = ?", (key,)
            ).fetchall()
            if "." in raw:
                rows = [r for r in rows if r[1] == CodeSystem.ICD10CM.value]
            rows.sort(key=lambda r: SYSTEM_ORDER.get(r[1], len(SYSTEM_ORDER)))
            cards = tuple(self._dated.apply(self._card(r), as_of) for r in rows)
            self._cards[cache_key] = cards
            if len(self._cards) > CARD_CACHE_SIZE:
                self._cards.popitem(last=False)
            return list(cards)

    def get(
        self, system: CodeSystem | str, code: str, as_of: date | None = None
    ) -> CodeCard | None:
        """The card of one code in one system, by display code (E11.9) or key (E119)."""
        system_value = CodeSystem(system).value
        with self._lock:
            self._fresh()
            row = self._conn.execute(
                f"SELECT {_CARD_COLUMNS} FROM codes WHERE system = ? AND code = ?",
                (system_value, code.strip()),
            ).fetchone()
            if row is None:
                row = self._conn.execute(
                    f"SELECT {_CARD_COLUMNS} FROM codes WHERE key = ? AND system = ?",
                    (normalize_code(code), system_value),
                ).fetchone()
            return None if row is None else self._dated.apply(self._card(row), as_of)

    # ------------------------------------------------------------------ releases

    def history(self, raw: str) -> list[tuple[CodeCard, list[str]]]:
        """Each card matching the typed code with its timeline across the releases held."""
        cards = self.lookup(raw)
        with self._lock:
            return [
                (
                    card,
                    history_lines(
                        card,
                        self._dated.spans(card.system.value, normalize_code(card.code)),
                        self._dated.calendar,
                    ),
                )
                for card in cards
            ]

    def valid_on(self, refs: list[tuple[str, str]], day: date) -> list[bool]:
        """For each (system, display code): was it a code (billable or header) on `day`?"""
        with self._lock:
            self._fresh()
            return self._dated.valid_on(refs, day)

    def changes(
        self, system: str, release: str, day: date, *, full: bool = False
    ) -> ReleaseChanges | None:
        """What `release` (or, when empty, the release in force on `day`) of a code set
        changed; None when no such release is held."""
        with self._lock:
            self._fresh()
            calendar = self._dated.calendar
            found = calendar.find(system, release) if release else calendar.in_force(system, day)
            if found is None:
                return None
            held = calendar.releases(system)
            index = next(i for i, r in enumerate(held) if r.release == found.release)
            previous = held[index - 1] if index else None
            per_kind = FULL_LIST_MAX if full else FIRST_ENTRIES
            return read_changes(self._conn, found, previous, per_kind)

    # ------------------------------------------------------------------ suggestions

    def _keys_with_prefix(self, prefix: str) -> list[str]:
        """All keys starting with `prefix` (index-only range scan, cached per prefix)."""
        keys = self._prefix_keys.get(prefix)
        if keys is None:
            # Keys are upper-case ASCII, so every key with the prefix sorts below prefix+"~".
            keys = [
                k
                for (k,) in self._conn.execute(
                    "SELECT DISTINCT key FROM codes WHERE key >= ? AND key < ?",
                    (prefix, prefix + "~"),
                )
                if "-" not in k  # ICD-10-CM blocks (E08-E13) are not codes to suggest
            ]
            if len(self._prefix_keys) > 2_000:
                self._prefix_keys.clear()
            self._prefix_keys[prefix] = keys
        return keys

    def suggest(self, raw: str, limit: int = 5) -> list[CodeRef]:
        """Up to `limit` valid codes close to an invalid (or non-billable) typed code.

        A typed code that exists but is not billable (S72001) gets its own codes below it
        (S72.001A ...). Otherwise candidates share the first three characters (two, if three
        find too few) and are ranked by edit distance, then by the longest common prefix
        (E11.99 -> E11.9 first), billable first, then by how close the differing characters
        are (E11.99 -> E11.69 before E11.29).
        """
        key = normalize_code(raw)
        if not key or limit <= 0:
            return []
        only_cm = "." in raw
        with self._lock:
            self._fresh()
            exact = [
                r
                for r in self._conn.execute(
                    "SELECT id, system, billable, kind FROM codes WHERE key = ?", (key,)
                ).fetchall()
                if not only_cm or r[1] == CodeSystem.ICD10CM.value
            ]
            below = [r for r in exact if not r[2] and r[3] != "modifier"]
            if below:
                return self._billable_below(below[0][0], limit)
            family = self._placeholder_family(key)
            if family:
                return family
            candidates: list[str] = []
            for width in (3, 2):
                if len(key) <= width:
                    continue
                candidates = self._keys_with_prefix(key[:width])
                if len(candidates) > limit:
                    break
            if not candidates and len(key) >= 2:
                candidates = self._keys_with_prefix(key[:1])
            near = extract(
                key,
                candidates,
                scorer=Levenshtein.distance,
                processor=None,
                limit=max(limit * 8, 40),
                score_cutoff=max(2, len(key) // 2),
            )
            near_keys = [k for k, _, _ in near if k != key]
            if not near_keys:
                return []
            marks = ",".join("?" * len(near_keys))
            rows = self._conn.execute(
                f"SELECT key, system, code, title, billable, kind, sort_order FROM codes"
                f" WHERE key IN ({marks})",
                near_keys,
            ).fetchall()
            distance = {k: d for k, d, _ in near}
            ranked = sorted(
                (
                    r
                    for r in rows
                    if r[5] not in HEADER_KINDS
                    and (not only_cm or r[1] == CodeSystem.ICD10CM.value)
                ),
                key=lambda r: (
                    distance[r[0]],
                    -_common_prefix(key, r[0]),
                    not r[4],
                    _char_gap(key, r[0]),
                    SYSTEM_ORDER.get(r[1], 9),
                    r[6],
                ),
            )
            return [
                CodeRef(CodeSystem(system), code, title, bool(billable))
                for _, system, code, title, billable, _, _ in ranked[:limit]
            ]

    def _placeholder_family(self, key: str) -> list[CodeRef]:
        """T81.4XXA: the placeholder X stands where T81.4 has children, so the user wants
        one of the 7-character codes below T81.4 with the same 7th character, in code order
        (T81.40XA … T81.49XA)."""
        if len(key) != 7 or "X" not in key[3:6]:
            return []
        stem, seventh = key[:6].rstrip("X"), key[6]
        row = self._conn.execute(
            "SELECT id FROM codes WHERE key = ? AND system = ? AND billable = 0",
            (stem, CodeSystem.ICD10CM.value),
        ).fetchone()
        if row is None:
            return []
        below = self._billable_below(row[0], PLACEHOLDER_FAMILY_LIMIT * 30)
        same = [ref for ref in below if ref.code.endswith(seventh) and len(ref.code) == 8]
        return same[:PLACEHOLDER_FAMILY_LIMIT]

    def _billable_below(self, row_id: int, limit: int) -> list[CodeRef]:
        """The first billable codes under a code, in code order (depth-first, lazily).

        Walking down in Python stops after `limit` hits, so S72 costs a handful of indexed
        queries instead of materialising its thousands of descendants.
        """
        found: list[CodeRef] = []

        def walk(parent_id: int) -> None:
            children = self._conn.execute(
                "SELECT id, system, code, title, billable FROM codes WHERE parent_id = ?"
                " ORDER BY sort_order",
                (parent_id,),
            ).fetchall()
            for child_id, system, code, title, billable in children:
                if len(found) >= limit:
                    return
                if billable:
                    found.append(CodeRef(CodeSystem(system), code, title, True))
                else:
                    walk(child_id)

        walk(row_id)
        return found

    # ------------------------------------------------------------------ status

    def releases(self) -> list[CodeSetStatus]:
        """Each code set in the database with its release and counts (CPT if imported)."""
        with self._lock:
            return read_code_sets(self._conn)

    def has_cpt(self) -> bool:
        """True once a licensed CPT file has been imported into this database."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM code_sets WHERE system = ?", (CodeSystem.CPT.value,)
            ).fetchone()
            return row is not None


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of two keys."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _char_gap(a: str, b: str) -> int:
    """How far apart the differing characters are (9 vs 6 is closer than 9 vs 2)."""
    gap = sum(abs(ord(x) - ord(y)) for x, y in zip(a, b, strict=False) if x != y)
    return gap + 10 * abs(len(a) - len(b))
