"""Readers that turn the public code-set files into rows for the code database.

Each reader (`icd10cm`, `icd10pcs`, `hcpcs`) returns a `SourceData`: the rows of one code
set in hierarchy order (a parent always comes before its children) plus the facts for its
`code_sets` row. The builder (`bot.codes.build`) only sees this neutral shape, so adding a
code set means adding a reader, not changing the builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.codes.releases import Release

#: The project's `data/` directory, where the public source files live.
DATA_DIR = Path(__file__).resolve().parents[3] / "data"


@dataclass(slots=True)
class CodeRow:
    """One row of the `codes` table before it gets an id.

    `parent` is the display code of the parent in the same system (None for a root);
    the builder turns it into `parent_id`. `details` becomes the JSON `details` column:
    {"notes": {type: [lines]}, "effective": {...}, "attributes": [[label, value]...],
    "source": {"file": ..., "release": ...}}.
    """

    system: str
    code: str
    key: str
    kind: str
    title: str
    short_title: str = ""
    billable: bool = False
    status: str = "active"
    parent: str | None = None
    search_terms: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SourceData:
    """Everything one reader produced: rows in hierarchy order and the code-set summary."""

    system: str
    label: str
    release: str
    source: str
    rows: list[CodeRow]
    counts: dict[str, int]
    # The releases held of this code set (oldest first) and what differs between them:
    # `code_spans` and `code_changes` rows, in the column order of bot/codes/releases.py.
    releases: list[Release] = field(default_factory=list)
    spans: list[tuple[Any, ...]] = field(default_factory=list)
    changes: list[tuple[Any, ...]] = field(default_factory=list)


def make_details(
    *,
    notes: dict[str, list[str]] | None = None,
    effective: dict[str, str] | None = None,
    attributes: list[tuple[str, str]] | None = None,
    source: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build a `details` dict, leaving out empty parts so the stored JSON stays small."""
    details: dict[str, Any] = {}
    if notes:
        details["notes"] = notes
    if effective:
        details["effective"] = effective
    if attributes:
        details["attributes"] = [list(pair) for pair in attributes]
    if source:
        details["source"] = source
    return details
