"""StateAccounts: the account/team commands, admin controls, notes, privacy, data requests.

Each test runs on both backends (`state_url`: a real SQLite file, a database on a real
PostgreSQL server); commands come from the real parser.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.codes.normalize import CodeShape
from bot.commands import MAX_NOTE_CHARS, CodeToken, Command, CommandKind, parse
from bot.config import ConfigError, Settings
from bot.model import ReplyKind, Request, UserRef
from bot.ports import LookupRecord
from bot.state import open_accounts
from bot.state.accounts import StateAccounts, normalize_target, sanitize_note
from bot.state.admin import export_team, purge_user
from bot.state.sqlite import SqliteStore
from bot.state.sqlite_db import Database

ALICE = UserRef("slack", "T1", "U1", "alice")
BOB = UserRef("slack", "T1", "U2", "bob")
EVE = UserRef("slack", "T2", "U9", "eve")  # another workspace
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def settings_for(where: Path | str, **changes: Any) -> Settings:
    """Settings for a state URL, or for a SQLite file at a path."""
    url = where if isinstance(where, str) else f"sqlite:///{where}"
    return Settings(database_url=url, **changes)


@pytest.fixture
async def accounts(state_url: str) -> AsyncIterator[StateAccounts]:
    opened = await StateAccounts.open(
        settings_for(state_url, admins=("slack:T1:UBOSS",)),
        now=lambda: NOW,
    )
    yield opened
    await opened.close()


_counter = iter(range(10**9))


async def say(accounts: StateAccounts, user: UserRef, text: str, *, admin: bool = False) -> str:
    request = Request(user, text, is_admin=admin, request_id=f"req-{next(_counter)}")
    reply = await accounts.handle(request, parse(text))
    assert reply.kind is ReplyKind.INFO
    return reply.text


async def test_open_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.sqlite"
    opened = await open_accounts(settings_for(path))
    await opened.close()
    assert path.is_file()
    for url in ("mysql://db/codebot", "sqlite:///", "state.sqlite"):
        with pytest.raises(ConfigError):
            await open_accounts(Settings(database_url=url))


async def test_bad_quota_table_fails_at_open(state_url: str) -> None:
    with pytest.raises(ConfigError):
        await StateAccounts.open(settings_for(state_url, quota={"plans": {"pro": {"limit": -5}}}))


async def test_quota_command_for_guest(accounts: StateAccounts) -> None:
    text = await say(accounts, ALICE, "/code quota")
    assert "1 code lookup remaining (guest plan" in text
    assert "/code register" in text
    await accounts.charge(ALICE, "r1", 1)
    assert "0 code lookups remaining (guest plan, 1 used)" in await say(
        accounts, ALICE, "/code quota"
    )


async def test_register_flow(accounts: StateAccounts) -> None:
    await accounts.charge(ALICE, "r1", 1)
    assert not (await accounts.charge(ALICE, "r2", 1)).allowed
    text = await say(accounts, ALICE, "/code register")
    assert text == (
        "You are registered. You get 5 more code lookups. "
        "5 code lookups remaining (registered plan)."
    )
    again = await say(accounts, ALICE, "/code register")
    assert again.startswith("You are already registered.")
    assert "5 code lookups remaining (registered plan)." in again
    assert (await accounts.charge(ALICE, "r3", 1)).notice == (
        "4 code lookups remaining (registered plan)."
    )


async def test_register_keeps_a_better_plan(accounts: StateAccounts) -> None:
    await say(accounts, BOB, "/code admin plan <@U1> pro", admin=True)
    text = await say(accounts, ALICE, "/code register")
    assert "keep your pro plan" in text


# ---------------------------------------------------------------------------- admin


async def test_non_admins_are_refused_and_logged(
    accounts: StateAccounts, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="codebot.audit"):
        text = await say(accounts, ALICE, "/code admin grant <@U1> 1000")
    assert text.startswith("Only admins can use `/code admin`")
    refused = [
        json.loads(record.getMessage().removeprefix("audit "))
        for record in caplog.records
        if record.name == "codebot.audit" and record.levelno == logging.WARNING
    ]
    assert refused == [
        {
            "event": "admin_refused",
            "command": "grant",
            "platform": "slack",
            "tenant": "T1",
            "user": "U1",
        }
    ]
    assert (await accounts.ledger.status(ALICE)).own.granted == 0


async def test_admins_from_settings_and_adapters(accounts: StateAccounts) -> None:
    boss = UserRef("slack", "T1", "UBOSS", "boss")
    assert (await say(accounts, boss, "/code admin grant <@U1> 5")).startswith("Granted 5")
    assert (await say(accounts, BOB, "/code admin grant <@U1> 5", admin=True)).startswith(
        "Granted 5"
    )
    # the settings list is per platform and tenant: UBOSS in another workspace is nobody
    other = UserRef("slack", "T2", "UBOSS")
    assert (await say(accounts, other, "/code admin usage")).startswith("Only admins")
    assert (await accounts.ledger.status(ALICE)).own.granted == 10


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("<@U123>", "U123"),
        ("<@U123|alice>", "U123"),
        ("<@123456789>", "123456789"),
        ("<@!123456789>", "123456789"),
        ("@alice", "alice"),
        ("alice", "alice"),
        ("<@&987>", None),
        ("<#C123>", None),
        ("<!channel>", None),
        ("", None),
        ("x" * 65, None),
    ],
)
def test_admin_targets_are_normalised(typed: str, expected: str | None) -> None:
    assert normalize_target(typed) == expected


async def test_admin_grant_variants(accounts: StateAccounts) -> None:
    discord = UserRef("discord", "G1", "42", "mod")
    text = await say(accounts, discord, "/code admin grant <@!1234> 50", admin=True)
    assert text.startswith("Granted 50 code lookups to user 1234.")
    assert "51 code lookups remaining (guest plan)." in text
    for bad in ("-5", "0", "five", "1000001", "1.5"):
        reply = await say(accounts, ALICE, f"/code admin grant <@U2> {bad}", admin=True)
        assert not reply.startswith("Granted"), bad
    assert (await accounts.ledger.status(BOB)).own.granted == 0
    no_team = await say(accounts, ALICE, "/code admin grant team 10", admin=True)
    assert "no team plan" in no_team


async def test_admin_plans(accounts: StateAccounts) -> None:
    text = await say(accounts, ALICE, "/code admin plan <@U2> pro", admin=True)
    assert text == "user U2 is on the pro plan (500 code lookups a month)."
    assert (await accounts.charge(BOB, "r1", 1)).notice == (
        "499 code lookups remaining (pro plan). Resets 2026-12-01 (UTC)."
    )
    assert "There is no plan called that" in await say(
        accounts, ALICE, "/code admin plan <@U2> platinum", admin=True
    )
    assert "team_2000 plan" in await say(
        accounts, ALICE, "/code admin plan team team_2000", admin=True
    )
    assert (await accounts.charge(BOB, "r2", 1)).notice.startswith(
        "1,999 code lookups remaining for your team (team_2000 plan)."
    )
    assert "Your team has 1,999 code lookups remaining" in await say(accounts, BOB, "/code quota")
    assert "removed" in await say(accounts, ALICE, "/code admin plan team none", admin=True)
    assert (await accounts.charge(BOB, "r3", 1)).notice.startswith("498 code lookups")
    unlimited = await say(accounts, ALICE, "/code admin plan team unlimited", admin=True)
    assert "unlimited" in unlimited
    assert (await accounts.charge(BOB, "r4", 1)).notice == "Unlimited team plan."


async def test_admin_usage_lists_top_users_of_this_tenant(accounts: StateAccounts) -> None:
    await say(accounts, ALICE, "/code admin plan team unlimited", admin=True)
    for i in range(3):
        await accounts.charge(BOB, f"b{i}", 1)
    await accounts.charge(ALICE, "a1", 1)
    await accounts.charge(EVE, "e1", 1)
    await accounts.record_lookups(
        Request(BOB, "/code E11.9", request_id="b0"), [LookupRecord("icd10cm", "E11.9", "T2DM")]
    )
    text = await say(accounts, ALICE, "/code admin usage", admin=True)
    lines = text.splitlines()
    assert lines[0] == "Top users since 2026-11-01 (UTC):"
    assert lines[1] == "1. bob (U2): 3 code lookups"
    assert lines[2] == "2. U1: 1 code lookup"
    assert "U9" not in text


# ---------------------------------------------------------------------------- notes


def note_command(code: str, text: str = "", delete: bool = False) -> Command:
    return Command(
        CommandKind.NOTE,
        codes=(CodeToken(code, CodeShape.CODE),),
        text=text,
        args=("delete",) if delete else (),
    )


async def note(
    accounts: StateAccounts, user: UserRef, command: Command, *, admin: bool = False
) -> str:
    reply = await accounts.handle(Request(user, "", is_admin=admin), command)
    assert reply.kind is ReplyKind.INFO
    return reply.text


async def test_notes_are_per_team_and_editable_by_author_or_admin(
    accounts: StateAccounts,
) -> None:
    saved = await say(accounts, ALICE, "/code note e119 Check A1c before coding")
    assert saved == "Team note on E119 saved: Check A1c before coding"  # shown as typed
    notes = await accounts.team_notes(ALICE, [("icd10cm", "E11.9"), ("icd10cm", "I10")])
    assert list(notes) == [("icd10cm", "E11.9")]
    assert notes[("icd10cm", "E11.9")].text == "Check A1c before coding"
    assert notes[("icd10cm", "E11.9")].author == "alice"
    # another workspace sees nothing, even for the same code
    assert await accounts.team_notes(EVE, [("icd10cm", "E11.9")]) == {}
    # a teammate can neither edit nor remove it; an admin can
    assert "Only the note's author or an admin" in await say(
        accounts, BOB, "/code note E11.9 mine now"
    )
    assert "Only the note's author or an admin" in await say(
        accounts, BOB, "/code note E11.9 delete"
    )
    assert "updated" in await say(accounts, ALICE, "/code note E11.9 Check A1c (2026)")
    assert "removed" in await say(accounts, BOB, "/code note E11.9 delete", admin=True)
    assert await accounts.team_notes(ALICE, [("icd10cm", "E11.9")]) == {}
    assert "There is no team note" in await say(accounts, ALICE, "/code note E11.9 delete")


async def test_notes_with_a_resolver_are_keyed_by_system(state_url: str) -> None:
    known = {"E119": ("icd10cm", "E11.9"), "A0425": ("hcpcs", "A0425")}
    accounts = await StateAccounts.open(
        settings_for(state_url),
        resolve=lambda typed: known.get(typed.replace(".", "").upper()),
    )
    try:
        assert "Team note on E11.9 saved" in await note(
            accounts, ALICE, note_command("e119", "dm2")
        )
        assert "not a valid code" in await note(accounts, ALICE, note_command("Z99.99", "x"))
        notes = await accounts.team_notes(ALICE, [("icd10cm", "E11.9"), ("icd10pcs", "E119")])
        assert list(notes) == [("icd10cm", "E11.9")]
    finally:
        await accounts.close()


async def test_notes_cannot_mass_mention(accounts: StateAccounts) -> None:
    text = "@everyone <!channel> <@U2> <@&123> ＠here call @HERE"
    await note(accounts, ALICE, note_command("E11.9", text))
    stored = (await accounts.team_notes(ALICE, [("icd10cm", "E11.9")]))[("icd10cm", "E11.9")]
    assert "@everyone" not in stored.text.lower()
    assert "@here" not in stored.text.lower()
    assert "<" not in stored.text
    assert "call" in stored.text
    assert "empty" in await note(accounts, ALICE, note_command("E11.9", "<!everyone>"))


MENTION_WORDS = st.sampled_from(
    ["@everyone", "@here", "@channel", "<!here>", "<@U1>", "<@&9>", "＠everyone", "<", ">", "@"]
)
NOTE_TEXT = st.lists(st.one_of(st.text(max_size=40), MENTION_WORDS), max_size=30).map("".join)


def _assert_safe(text: str) -> None:
    assert len(text) <= MAX_NOTE_CHARS
    folded = text.casefold()
    for mass in ("@everyone", "@here", "@channel"):
        assert mass not in folded
    assert not any(unicodedata.category(ch) == "Cc" for ch in text)
    assert not re.search(r"<\s*[@#!][^<>]*>", text)  # no complete mention syntax


@given(NOTE_TEXT | st.text(min_size=400, max_size=5000))
@settings(max_examples=300, deadline=None)
def test_sanitize_note_is_total_and_safe(raw: str) -> None:
    cleaned = sanitize_note(raw)
    _assert_safe(cleaned)
    assert sanitize_note(cleaned) == cleaned or len(cleaned) == MAX_NOTE_CHARS


@given(NOTE_TEXT, st.booleans())
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_note_text_is_stored_and_returned_safely(
    state_url: str, raw: str, through_parser: bool
) -> None:
    # one state file for all examples (the fixture is per test): each example overwrites
    async def scenario() -> None:
        accounts = await StateAccounts.open(settings_for(state_url))
        try:
            command = (
                parse(f"/code note E11.9 {raw}") if through_parser else note_command("E11.9", raw)
            )
            reply = await accounts.handle(Request(ALICE, raw), command)
            assert reply.kind in (ReplyKind.INFO, ReplyKind.INVALID)
            notes = await accounts.team_notes(ALICE, [("icd10cm", "E11.9")])
            for stored in notes.values():
                _assert_safe(stored.text)
                assert stored.text  # an empty note is refused, never stored
            assert await accounts.team_notes(EVE, [("icd10cm", "E11.9")]) == {}
        finally:
            await accounts.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------------------- history, stats


async def test_recent_and_stats_are_per_tenant(accounts: StateAccounts) -> None:
    assert await say(accounts, ALICE, "/code recent") == "Your team has no lookups yet."
    for i in range(25):
        user = ALICE if i % 2 else BOB
        await accounts.record_lookups(
            Request(user, "", request_id=f"r{i}"),
            [LookupRecord("icd10cm", "E11.9" if i % 3 else "I10", "Some title")],
        )
        await accounts.charge(user, f"r{i}", 1)
    await accounts.record_lookups(
        Request(EVE, "", request_id="e1"), [LookupRecord("hcpcs", "A0425", "Ground mileage")]
    )
    recent = (await say(accounts, ALICE, "/code recent")).splitlines()
    assert recent[0] == "Your team's last 20 lookups:"
    assert len(recent) == 21
    assert "2026-11-29 12:00 UTC · alice · E11.9 (ICD-10-CM) Some title" in recent
    assert not any("A0425" in line for line in recent)
    stats = (await say(accounts, BOB, "/code stats")).splitlines()
    assert stats[0] == "Team usage since 2026-11-01 (UTC): 2 code lookups by 2 people."
    assert stats[1] == "Most looked-up codes:"
    assert stats[2].startswith("1. E11.9 (ICD-10-CM)")
    assert stats[2].endswith("× 16")
    assert not any("A0425" in line for line in stats)
    eve_stats = await say(accounts, EVE, "/code stats")
    assert "E11.9" not in eve_stats and "A0425" in eve_stats


# ---------------------------------------------------------------------------- data requests


async def test_export_and_purge(state_url: str) -> None:
    settings = settings_for(state_url)
    accounts = await StateAccounts.open(settings)
    try:
        await say(accounts, BOB, "/code admin plan team team_2000", admin=True)
        await say(accounts, BOB, "/code admin grant <@U1> 3", admin=True)
        await accounts.charge(ALICE, "a1", 1)
        await accounts.charge(EVE, "e1", 1)
        await accounts.record_lookups(
            Request(ALICE, "", request_id="a1"), [LookupRecord("icd10cm", "E11.9", "T2DM")]
        )
        await say(accounts, ALICE, "/code note E11.9 alice's note")
        await say(accounts, EVE, "/code note E11.9 eve's note")
    finally:
        await accounts.close()

    data = await export_team(settings, "T1")
    assert data["tenant"] == "T1"
    assert [row["plan"] for row in data["teams"]] == ["team_2000"]
    assert {row["user_id"] for row in data["charges"]} == {"U1"}
    assert [row["text"] for row in data["notes"]] == ["alice's note"]
    assert all(row["tenant"] == "T1" for table in ("usage", "lookups") for row in data[table])
    assert (await export_team(settings, "slack:T1"))["notes"] == data["notes"]
    assert (await export_team(settings, "T1", platform="discord"))["notes"] == []

    removed = await purge_user(settings, "U1", platform="slack")
    assert removed > 0
    after = await export_team(settings, "T1")
    assert after["lookups"] == [] and after["notes"] == []
    assert all(
        row["user_id"] != "U1" for table in ("charges", "usage", "grants") for row in after[table]
    )
    # the team pool keeps its count, anonymised
    assert [row["user_id"] for row in after["charges"]] == ["(deleted)"]
    assert [row["used"] for row in after["usage"] if row["user_id"] == ""] == [1]
    # another tenant's data is untouched
    assert [row["text"] for row in (await export_team(settings, "T2"))["notes"]] == ["eve's note"]


# ------------------------------------------------------------- one-hop charge + notes


async def test_charge_and_notes_in_one_hop_under_concurrency(accounts: StateAccounts) -> None:
    """Concurrent requests share hops (group commit) yet stay exact, idempotent, isolated."""
    await say(accounts, ALICE, "/code note e119 Check A1c before coding")
    users = [UserRef("slack", "T1", f"UC{n}", f"c{n}") for n in range(20)] + [EVE]
    keys = [("icd10cm", "E11.9")]
    sends = [(user, f"{user.user_id}-{n}") for user in users for n in range(2)]
    sends += [(user, f"{user.user_id}-0") for user in users]  # replays of the first ones
    results = await asyncio.gather(
        *(accounts.charge_and_notes(user, rid, 1, keys) for user, rid in sends)
    )
    by_request: dict[str, list[Any]] = {}
    for (user, rid), (outcome, notes) in zip(sends, results, strict=True):
        by_request.setdefault(rid, []).append((user, outcome, notes))
    for user in users:  # guest plan: one lookup each, so one of the two request ids wins
        # (SQLite runs them in submission order; a PostgreSQL pool in any order)
        sent = [by_request[f"{user.user_id}-{n}"] for n in range(2)]
        outcomes = [[outcome for _, outcome, _ in entries] for entries in sent]
        assert sorted(entries[0].allowed for entries in outcomes) == [False, True]
        assert all(len({o.allowed for o in entries}) == 1 for entries in outcomes)
        assert sorted(o.replayed for o in outcomes[0]) == [False, True]  # -0 was sent twice
        expected = {} if user is EVE else {keys[0]: ("Check A1c before coding", "alice")}
        for _, outcome, notes in sent[0] + sent[1]:
            shown = {k: (n.text, n.author) for k, n in notes.items()}
            assert shown == (expected if outcome.allowed else {})
    assert await accounts.ledger.ledger_check() == []


async def test_a_failing_job_does_not_fail_its_batch(tmp_path: Path) -> None:
    """SQLite only: its connection batches jobs of concurrent requests into one hop."""
    store = await SqliteStore.open(tmp_path / "state.sqlite")
    try:
        await _failing_job_scenario(store.db)
    finally:
        await store.close()


async def _failing_job_scenario(database: Database) -> None:
    def broken(connection: Any) -> int:
        connection.execute("SELECT * FROM no_such_table")
        return 0

    jobs = [database.execute("UPDATE usage SET granted = granted WHERE 0") for _ in range(5)]
    outcomes = await asyncio.gather(
        *jobs[:2], database.run(broken), *jobs[2:], return_exceptions=True
    )
    assert [type(outcome).__name__ for outcome in outcomes] == ["int"] * 2 + [
        "OperationalError"
    ] + ["int"] * 3
    assert await database.fetchone("SELECT 1") is not None
