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
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import extract

from bot.codes.dated import DatedView
from bot.codes.inherited_notes import NoteInheritance
from bot.codes.manifestation import MANIFESTATION_KEY, MANIFESTATION_NOTE, is_manifestation
from bot.codes.normalize import is_block_shaped, is_pcs_partial, is_pcs_shaped, normalize_code
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
            CodeRef(CodeSystem(c_system), c_code, c_title, bool(c_billable), c_kind, c_status)
            for c_system, c_code, c_title, c_billable, c_kind, c_status in self._conn.execute(
                "SELECT system, code, title, billable, kind, status FROM codes WHERE parent_id = ?"
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
        attributes = self._attributes(details, direct_parent)
        if system == CodeSystem.ICD10PCS.value:
            attributes = _pcs_positions(code, attributes)
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
            attributes=attributes,
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

    def partial(self, raw: str, as_of: date | None = None) -> list[CodeCard]:
        """The card of a partial PCS code: a body system (`0D`) or the row of a table that
        a four- or five-character prefix picks (`0DTJ`: every code of 0DT with body part J).

        Body systems are stored under `PCSBODY0D` so that exact lookups never find them;
        a row is not stored at all: its card is the table's, narrowed to the codes with the
        prefix. [] when the key is no such thing (or no code has the prefix).
        """
        key = normalize_code(raw)
        if "." in raw or not is_pcs_partial(key):
            return []
        if len(key) == 2:
            return self.lookup(f"PCSBODY{key}", as_of)
        table = self.get(CodeSystem.ICD10PCS, key[:3], as_of)
        if table is None or table.kind != "table":
            return []
        with self._lock:
            self._fresh()
            rows = self._conn.execute(
                "SELECT id, code, title, billable, kind, status FROM codes"
                " WHERE key >= ? AND key < ? AND system = ? AND kind = 'code'"
                " ORDER BY sort_order",
                (key, key + "~", CodeSystem.ICD10PCS.value),
            ).fetchall()
            if not rows:
                return []
            first = self._card(
                self._conn.execute(
                    f"SELECT {_CARD_COLUMNS} FROM codes WHERE id = ?", (rows[0][0],)
                ).fetchone()
            )
        axes = first.attributes[3 : len(key)]
        children = tuple(
            CodeRef(CodeSystem.ICD10PCS, code, title, bool(billable), kind, status)
            for _, code, title, billable, kind, status in rows[:MAX_CHILDREN]
        )
        table_ref = CodeRef(CodeSystem.ICD10PCS, table.code, table.title, False, "table")
        return [
            replace(
                table,
                code=key,
                # "Gastrointestinal System, Resection, Appendix": the table and the row's axes
                title=", ".join([table.title, *(value.split(" ", 1)[-1] for _, value in axes)]),
                short_title="",
                kind="table_row",
                parents=(*table.parents, table_ref),
                children=children,
                children_total=len(rows),
                attributes=table.attributes + axes,
                coding=None,
            )
        ]

    def pcs_axis_problem(self, raw: str) -> str:
        """Why a PCS-shaped key is not a code of its table: the first axis (4-7) whose value
        no code of the table has after the characters before it, and the valid values there
        ("Approach 3 is not valid in 0DT row J (Appendix); valid: 0 Open, 4 …").

        The valid codes in the database are the expansion of the tables XML's rows (the
        build checks both agree), so the values valid after a prefix are read from them
        with one index range scan per axis and nothing more is stored. '' when the table
        does not exist or every character typed is valid so far.
        """
        key = normalize_code(raw)
        if "." in raw or not is_pcs_shaped(key):
            return ""
        system = CodeSystem.ICD10PCS.value
        with self._lock:
            self._fresh()
            for position in range(3, min(len(key), 7)):
                prefix = key[:position]
                # one code's details per value of this axis: its labels for every axis
                found = self._conn.execute(
                    "SELECT substr(key, ?, 1), min(details) FROM codes"
                    " WHERE key >= ? AND key < ? AND system = ? AND kind = 'code'"
                    " GROUP BY 1 ORDER BY 1",
                    (position + 1, prefix, prefix + "~", system),
                ).fetchall()
                if not found:
                    return ""
                values = {char: json.loads(raw_details) for char, raw_details in found}
                if key[position] in values:
                    continue
                axes = [list(map(str, a)) for a in next(iter(values.values()))["attributes"]]
                title = axes[position - 3][0]
                where = f"table {key[:3]}"
                if position > 3:
                    picked = ", ".join(a[1] for a in axes[: position - 3])
                    where = f"{key[:3]} row {key[3:position]} ({picked})"
                labels = [
                    f"{char} {details['attributes'][position - 3][1]}"
                    for char, details in values.items()
                ]
                listed = labels if len(labels) <= 10 else list(values)
                return (
                    f"{title} {key[position]} is not valid in {where}; valid: {', '.join(listed)}"
                )
        return ""

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
        if is_block_shaped(key):
            return self._blocks_near(key, limit)
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
                f"SELECT key, system, code, title, billable, kind, sort_order, status FROM codes"
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
                CodeRef(CodeSystem(system), code, title, bool(billable), kind, status)
                for _, system, code, title, billable, kind, _, status in ranked[:limit]
            ]

    def _blocks_near(self, key: str, limit: int) -> list[CodeRef]:
        """For a range that is not a block (E08-E10): the blocks that start or end as it
        does and the blocks of its two categories, in code order."""
        first, last = key.split("-")
        with self._lock:
            self._fresh()
            rows = self._conn.execute(
                "SELECT DISTINCT b.code, b.title, b.sort_order FROM codes b"
                " LEFT JOIN codes c ON c.parent_id = b.id"
                " WHERE b.system = ? AND b.kind = 'block'"
                " AND (b.key LIKE ? OR b.key LIKE ? OR c.key IN (?, ?))"
                " ORDER BY b.sort_order LIMIT ?",
                (CodeSystem.ICD10CM.value, f"{first}-%", f"%-{last}", first, last, limit),
            ).fetchall()
        return [CodeRef(CodeSystem.ICD10CM, code, title, False, "block") for code, title, _ in rows]

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


def _pcs_positions(
    code: str, attributes: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """PCS axes by position and value, "4 Body Part: J Appendix": imaging has two axes
    titled Qualifier (6 and 7), which only their position tells apart."""
    if len(attributes) > len(code):
        return attributes  # not one axis per character: leave as stored
    return tuple(
        (f"{index + 1} {title}", f"{code[index]} {value}")
        for index, (title, value) in enumerate(attributes)
    )


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
