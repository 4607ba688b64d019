"""The as-of date in the command grammar, the clock, and the releases in the code DB."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from bot.as_of import parse_day, split_as_of
from bot.clock import clock_from_settings, fixed_clock
from bot.codes.catalog import CodeCatalog
from bot.codes.normalize import shape_of
from bot.codes.releases import ReleaseCalendar, read_releases
from bot.commands import CodeToken, CommandKind, parse
from bot.config import ConfigError, Settings
from bot.model import CodeSystem, NotFound
from bot.resolver import CodeResolver


@pytest.mark.parametrize(
    "text",
    [
        "/code E11.9 on 2025-03-01",
        "/code E11.9 dos 2025-03-01",
        "/code E11.9 @2025-03-01",
        "/code @ 2025-03-01 E11.9",
        "/code E11.9 DOS: 03/01/2025",
        "/code on 3/1/2025 E11.9",
        "/code E11.9 as of 2025-03-01",
    ],
)
def test_every_spelling_of_the_date_gives_the_same_command(text: str) -> None:
    command = parse(text)
    assert command.kind is CommandKind.LOOKUP
    assert [token.text for token in command.codes] == ["E11.9"]
    assert command.as_of == date(2025, 3, 1)


def test_search_and_history_carry_the_date_and_plain_words_do_not() -> None:
    search = parse("/code knee brace on 2025-03-01")
    assert search.kind is CommandKind.SEARCH and search.query == "knee brace"
    assert search.as_of == date(2025, 3, 1)
    assert parse("/code history E11.9 dos 2024-01-05").as_of == date(2024, 1, 5)
    assert parse("/code history E11.9").kind is CommandKind.HISTORY
    assert parse("/code fall on ice").query == "fall on ice"
    assert parse("/code fall on ice").as_of is None
    assert parse("/code E11.9").as_of is None


def test_bad_dates_are_refused_clearly_and_notes_keep_their_dates() -> None:
    for text in (
        "/code E11.9 dos 2025-02-30",
        "/code E11.9 @2025-13-01",
        "/code E11.9 on 2/30/2025",
    ):
        command = parse(text)
        assert command.kind is CommandKind.INVALID
        assert "is not a date" in command.text
    assert parse("/code E11.9 on 2025-03-01 on 2025-04-01").kind is CommandKind.INVALID
    assert parse("/code on 2025-03-01").kind is CommandKind.INVALID
    note = parse("/code note E11.9 payer denied on 2025-03-01")
    assert note.kind is CommandKind.NOTE and note.text == "payer denied on 2025-03-01"
    assert note.as_of is None


def test_parse_day_and_split_never_raise_on_garbage() -> None:
    assert parse_day("2025-03-01") == date(2025, 3, 1)
    assert parse_day("03-01-2025") == date(2025, 3, 1)
    assert parse_day("20250301") is None
    for junk in ("@" * 5000, "on " * 3000, "dos \u202e2025-03-01", "@2025-03-01'; DROP TABLE x"):
        split_as_of(junk)
        parse(junk)


def test_changes_grammar() -> None:
    command = parse("/code changes icd10cm FY2027")
    assert command.kind is CommandKind.CHANGES
    assert command.system is CodeSystem.ICD10CM and command.args == ("FY2027",)
    assert parse("/code changes pcs").system is CodeSystem.ICD10PCS
    assert parse("/code changes").args == ()
    assert parse("/code changes hcpcs 2026-01 extra words").kind is CommandKind.INVALID


def test_clock_is_pinned_by_settings() -> None:
    assert clock_from_settings("2026-09-30")() == date(2026, 9, 30)
    assert fixed_clock(date(2020, 1, 1))() == date(2020, 1, 1)
    assert Settings.from_env({"CODEBOT_TODAY": "2026-09-30"}).today == "2026-09-30"
    with pytest.raises(ConfigError):
        Settings.from_env({"CODEBOT_TODAY": "yesterday"})


def test_code_db_lists_its_releases_with_effective_ranges(codes_db_path: Path) -> None:
    conn = sqlite3.connect(codes_db_path)
    try:
        releases = read_releases(conn)
    finally:
        conn.close()
    calendar = ReleaseCalendar(releases)
    for system in ("icd10cm", "icd10pcs", "hcpcs"):
        held = calendar.releases(system)
        assert held, system
        # ranges are contiguous and only the newest is open-ended
        for before, after in itertools.pairwise(held):
            assert before.effective_to is not None
            assert (after.effective_from - before.effective_to).days == 1
        assert held[-1].effective_to is None


def test_dates_before_icd10_point_to_the_icd9_crosswalk(catalog: CodeCatalog) -> None:
    resolver = CodeResolver(catalog)
    (item,) = resolver.items([CodeToken("E11.9", shape_of("E11.9"))], date(2014, 6, 1))
    assert isinstance(item, NotFound)
    assert "ICD-9-CM" in item.message and "2015-10-01" in item.message
