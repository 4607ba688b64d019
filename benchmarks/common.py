"""Helpers shared by the benchmarks: the code database to measure and percentiles."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bot.config import DEFAULT_CODES_DB


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (`pct` in 0–100) of `values`; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def configured_codes_db() -> Path:
    """The code DB named by CODEBOT_CODES_DB, else data/build/codes.sqlite (maybe not built)."""
    return Path(os.environ.get("CODEBOT_CODES_DB") or DEFAULT_CODES_DB)


def codes_database(
    *, search_index: bool = True
) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """The built code DB (CODEBOT_CODES_DB, else data/build), or a fresh temporary build.

    The second value is the temporary directory to clean up, or None.
    """
    given = os.environ.get("CODEBOT_CODES_DB")
    for candidate in (Path(given) if given else None, DEFAULT_CODES_DB):
        if candidate is not None and candidate.is_file():
            return candidate, None
    from bot.codes.build import build_code_db

    scratch = tempfile.TemporaryDirectory()
    path = Path(scratch.name) / "codes.sqlite"
    build_code_db(path, progress=lambda _line: None, search_index=search_index)
    return path, scratch
