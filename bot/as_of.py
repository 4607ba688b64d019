"""The as-of date of a `/code …` message: `on 2025-03-01`, `dos 2025-03-01`, `@2025-03-01`.

Claims are coded for the date of service, so any lookup, search, history or changes request
may name the day it is about. The phrase may stand anywhere in the message
(`/code E11.9 on 2025-03-01`, `/code dos 03/01/2025 knee brace`). Accepted dates: ISO
`2025-03-01` and US `3/1/2025` or `03-01-2025` (month first, as on US claims). "on" followed
by something that is not a date is ordinary text ("fall on ice"); `dos` or `@` followed by
a malformed or impossible date (`dos 2025-02-30`) is an error the user is told about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# The keyword, then a date-like token. Both must stand as whole words.
_PHRASE = re.compile(
    r"(?:(?<!\S)(?P<word>on|dos|as\s+of|date\s+of\s+service)\s*:?\s+|(?<!\S)@\s*)"
    r"(?P<date>[0-9][0-9./-]{4,11})(?!\S)",
    re.IGNORECASE,
)
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_US = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
USAGE = "Dates look like 2025-03-01 or 03/01/2025 (e.g. /code E11.9 on 2025-03-01)."


@dataclass(frozen=True)
class AsOf:
    """What `split_as_of` found: the text without the date phrase, the date, or an error."""

    text: str
    day: date | None = None
    error: str = ""


def parse_day(raw: str) -> date | None:
    """A date typed as `2025-03-01`, `3/1/2025` or `03-01-2025`; None when it is not one."""
    raw = raw.strip()
    match = _ISO.match(raw)
    if match:
        year, month, day = (int(part) for part in match.groups())
    else:
        match = _US.match(raw)
        if not match:
            return None
        month, day, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def split_as_of(text: str) -> AsOf:
    """Find the one as-of phrase in cleaned message text and take it out. Never raises."""
    matches = list(_PHRASE.finditer(text))
    if not matches:
        return AsOf(text)
    if len(matches) > 1:
        return AsOf(text, error="One date per request, please. " + USAGE)
    match = matches[0]
    day = parse_day(match.group("date"))
    if day is None:
        word = (match.group("word") or "@").lower()
        if word == "on" and not _looks_like_a_date(match.group("date")):
            return AsOf(text)  # "on 5 mg": not a date phrase at all
        shown = match.group("date")[:12]
        return AsOf(text, error=f"{shown} is not a date. " + USAGE)
    rest = " ".join((text[: match.start()] + " " + text[match.end() :]).split())
    return AsOf(rest, day=day)


def _looks_like_a_date(token: str) -> bool:
    """A token that was meant as a date (has a separator and a 4-digit year)."""
    return bool(re.search(r"\d{4}", token)) and bool(re.search(r"[./-]", token))
