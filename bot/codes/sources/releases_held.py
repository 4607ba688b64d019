"""The releases held of each code set: the base readers plus the history of each set.

`bot.codes.build.default_sources` calls these loaders. Each returns the base reader's
`SourceData` (the newest release held, for the `codes` table) with its `releases`, `spans`
and `changes` filled in (see bot/codes/releases.py).
"""

from __future__ import annotations

from datetime import date

from bot.codes.releases import Release
from bot.codes.sources import SourceData


def icd10cm() -> SourceData:
    """ICD-10-CM FY2019-FY2027, FY2027 in the `codes` table (see icd10cm_history.py)."""
    from bot.codes.sources import icd10cm_history

    return icd10cm_history.load()


def icd10pcs() -> SourceData:
    """ICD-10-PCS: the releases held, newest in the `codes` table."""
    from bot.codes.sources import icd10pcs as base

    data = base.load()
    data.releases = [
        Release(
            data.system,
            "FY2026",
            "FY2026",
            date(2025, 10, 1),
            None,
            data.source,
            {"codes": data.counts.get("codes", 0)},
        )
    ]
    return data


def hcpcs() -> SourceData:
    """HCPCS Level II: the quarters held, newest in the `codes` table."""
    from bot.codes.sources import hcpcs as base

    data = base.load()
    data.releases = [
        Release(
            data.system,
            "2026-01",
            "January 2026 quarterly update",
            date(2026, 1, 1),
            None,
            data.source,
            {"codes": data.counts.get("codes", 0)},
        )
    ]
    return data
