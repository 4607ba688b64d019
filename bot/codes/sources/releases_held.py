"""The releases held of each code set: what `bot.codes.build.default_sources` reads.

Each loader returns the newest release held (for the `codes` table) with its `releases`,
`spans` and `changes` filled in (see bot/codes/releases.py and the *_history modules).
"""

from __future__ import annotations

from bot.codes.sources import SourceData


def icd10cm() -> SourceData:
    """ICD-10-CM FY2019-FY2027, FY2027 in the `codes` table (see icd10cm_history.py)."""
    from bot.codes.sources import icd10cm_history

    return icd10cm_history.load()


def icd10pcs() -> SourceData:
    """ICD-10-PCS FY2024-FY2027, FY2027 in the `codes` table (see icd10pcs_history.py)."""
    from bot.codes.sources import icd10pcs_history

    return icd10pcs_history.load()


def hcpcs() -> SourceData:
    """HCPCS Level II October 2025 and January 2026 (see hcpcs_history.py)."""
    from bot.codes.sources import hcpcs_history

    return hcpcs_history.load()
