"""ICD-10-PCS FY2026 from the CMS order file, with axis meanings from the CMS tables XML.

The order file lists the 79,115 valid codes and the 914 three-character table headers
(layout in data/README.md). It has no section or body-system rows, so those names, the
root-operation definitions and the meaning of every character of every code come from the
tables XML: each `pcsTable` fixes characters 1-3 and each `pcsRow` lists allowed values for
characters 4-7; the codes of a row are the cartesian product of those values.

Keys of the section and body-system rows (`PCSSECTION0`, `PCSBODY0D`) cannot be typed as
codes, so a user typing `0D` is not shown a body system by accident; tables keep their
3-character code as key (`0DT`), which may collide with an ICD-10-CM category (`B00`).
"""

from __future__ import annotations

import gzip
import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

from bot.codes.sources import DATA_DIR, CodeRow, SourceData, make_details

SYSTEM = "icd10pcs"
LABEL = "ICD-10-PCS"
RELEASE = "FY2026"
ORDER_FILE = "icd10pcs_order_2026.txt.gz"
TABLES_FILE = "icd10pcs_tables_2026.xml.gz"

Axis = tuple[str, str]  # (axis title, value meaning), e.g. ("Approach", "Open")


class _Table:
    """One PCS table: its first three axes and the axes 4-7 of each of its codes."""

    __slots__ = ("body_system", "operation", "section")

    def __init__(self, section: Axis, body_system: Axis, operation: Axis) -> None:
        self.section = section
        self.body_system = body_system
        self.operation = operation


def _axis(elem: ET.Element) -> tuple[str, list[tuple[str, str]], str]:
    """An `axis` element as (title, [(char, label)], definition)."""
    title = (elem.findtext("title") or "").strip()
    labels = [
        (lab.get("code", ""), " ".join((lab.text or "").split())) for lab in elem.iter("label")
    ]
    definition = " ".join((elem.findtext("definition") or "").split())
    return title, labels, definition


def _read_tables(path: Path) -> tuple[dict[str, _Table], dict[str, tuple[Axis, ...]]]:
    """Parse the tables XML: table header -> _Table, and code -> its axes 4-7."""
    with gzip.open(path, "rb") as fh:
        root = ET.parse(fh).getroot()
    tables: dict[str, _Table] = {}
    code_axes: dict[str, tuple[Axis, ...]] = {}
    for table in root.iter("pcsTable"):
        head: dict[str, tuple[str, list[tuple[str, str]], str]] = {}
        for axis in table.findall("axis"):
            head[axis.get("pos", "")] = _axis(axis)
        (t1, l1, _), (t2, l2, _), (t3, l3, d3) = head["1"], head["2"], head["3"]
        prefix = l1[0][0] + l2[0][0] + l3[0][0]
        operation = f"{l3[0][1]}: {d3}" if d3 else l3[0][1]
        tables[prefix] = _Table((t1, l1[0][1]), (t2, l2[0][1]), (t3, operation))
        for row in table.findall("pcsRow"):
            by_pos = {axis.get("pos", ""): _axis(axis) for axis in row.findall("axis")}
            choices = [
                [(char, (by_pos[pos][0], label)) for char, label in by_pos[pos][1]]
                for pos in ("4", "5", "6", "7")
            ]
            for combo in itertools.product(*choices):
                code = prefix + "".join(char for char, _ in combo)
                # First row wins: CMS rows do not overlap, and if they did the first is canonical.
                code_axes.setdefault(code, tuple(axis for _, axis in combo))
    return tables, code_axes


def load(data_dir: Path | None = None) -> SourceData:
    """Read the PCS order file and tables XML into rows (sections, body systems, tables, codes)."""
    folder = (data_dir or DATA_DIR) / "icd10pcs"
    tables, code_axes = _read_tables(folder / TABLES_FILE)
    rows: list[CodeRow] = []
    seen_sections: set[str] = set()
    seen_bodies: set[str] = set()
    headers = valid = 0
    missing_axes: list[str] = []
    with gzip.open(folder / ORDER_FILE, "rt", encoding="ascii") as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if not line:
                continue
            code = line[6:13].strip()
            is_valid = line[14] == "1"
            short = line[16:76].strip()
            long = line[77:].strip()
            if not is_valid:
                table = tables.get(code)
                if table is None:
                    raise ValueError(
                        f"PCS table {code} is in the order file but not the tables XML"
                    )
                section, body = code[0], code[:2]
                if section not in seen_sections:
                    seen_sections.add(section)
                    rows.append(
                        CodeRow(
                            system=SYSTEM,
                            code=section,
                            key=f"PCSSECTION{section}",
                            kind="section",
                            title=table.section[1],
                        )
                    )
                if body not in seen_bodies:
                    seen_bodies.add(body)
                    rows.append(
                        CodeRow(
                            system=SYSTEM,
                            code=body,
                            key=f"PCSBODY{body}",
                            kind="body_system",
                            title=table.body_system[1],
                            parent=section,
                            details=make_details(attributes=[table.section]),
                        )
                    )
                rows.append(
                    CodeRow(
                        system=SYSTEM,
                        code=code,
                        key=code,
                        kind="table",
                        title=long,
                        short_title="" if short == long else short,
                        parent=body,
                        details=make_details(
                            attributes=[table.section, table.body_system, table.operation]
                        ),
                    )
                )
                headers += 1
                continue
            table = tables.get(code[:3])
            axes = code_axes.get(code)
            if table is None or axes is None:
                missing_axes.append(code)
                axes = ()
            rows.append(
                CodeRow(
                    system=SYSTEM,
                    code=code,
                    key=code,
                    kind="code",
                    title=long,
                    short_title="" if short == long else short,
                    billable=True,
                    parent=code[:3],
                    # Characters 1-3 are on the parent table row; the catalog prepends
                    # them ("inherit_attributes"), which keeps the file ~20 MB smaller.
                    details={**make_details(attributes=list(axes)), "inherit_attributes": 1},
                )
            )
            valid += 1
    if missing_axes:
        # The README checked that the XML expands to exactly the order file's codes; a
        # mismatch means a wrong file was dropped in, which we must not publish silently.
        raise ValueError(
            f"{len(missing_axes)} PCS codes have no row in the tables XML, e.g. {missing_axes[:3]}"
        )
    counts = {
        "codes": valid,
        "billable": valid,
        "headers": headers,
        "sections": len(seen_sections),
        "body_systems": len(seen_bodies),
    }
    return SourceData(
        system=SYSTEM,
        label=LABEL,
        release=RELEASE,
        source=f"CMS ICD-10-PCS order file {ORDER_FILE[:-3]} + tables {TABLES_FILE[:-3]}",
        rows=rows,
        counts=counts,
    )
