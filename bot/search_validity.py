"""The release in force, applied to search and autocomplete results.

The search engine ranks by words over every code the database holds, including codes that
were deleted (ICD-10) or terminated (HCPCS) and codes not yet valid on an earlier date of
service. This hook, kept apart from the ranking so both can change independently, puts the
codes that existed on the asked day first (in the engine's order) and the others after them,
marked, so a deleted code never outranks a valid one, unless the user asked for a date when
it was valid (then it is valid, and ranks as usual).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from typing import TypeVar

from bot.model import CodeRef, SearchHit

#: How many more results to ask the engine for, so that enough valid ones survive.
OVERFETCH = 2

Result = TypeVar("Result", SearchHit, CodeRef)
ValidOn = Callable[[list[tuple[str, str]], date], list[bool]]


def valid_first(
    results: Sequence[Result], day: date, valid_on: ValidOn, limit: int
) -> list[Result]:
    """Valid-on-`day` results first, then the others marked "not valid on DAY"; `limit` in all."""
    if not results:
        return []
    flags = valid_on([(r.system.value, r.code) for r in results], day)
    valid: list[Result] = []
    invalid: list[Result] = []
    for result, ok in zip(results, flags, strict=True):
        if ok:
            valid.append(result)
        else:
            marked = f"{result.title} [not valid on {day.isoformat()}]"
            invalid.append(replace(result, title=marked, billable=False))
    valid.extend(invalid)
    return valid[:limit]
