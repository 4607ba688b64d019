"""Every request id is processed once across all processes (issue 12 item 3).

Two services (or two Slack app instances) on one state database stand for two processes:
a retried Slack event, a replayed slash command or a repeated interaction id is applied
once and answered once. Paid answers are recorded by their ledger row (a replay is free
and `replayed`); every other command claims its id first. Both backends.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import open_service
from bot.config import Settings
from bot.model import ReplyKind, Request, UserRef
from bot.service import LookupService
from bot.state.accounts import StateAccounts
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.slack_harness import running_slack, slack_settings

ADMIN = UserRef("slack", "T1", "UBOSS", "boss")
ALICE = UserRef("slack", "T1", "U1", "alice")


@pytest.fixture
async def two_services(
    state_url: str, codes_db_path: Path
) -> AsyncIterator[tuple[LookupService, LookupService, Settings]]:
    settings = Settings(codes_db=codes_db_path, database_url=state_url)
    async with open_service(settings) as one, open_service(settings) as two:
        yield one, two, settings


async def granted_to(settings: Settings, user: UserRef) -> int:
    accounts = await StateAccounts.open(settings)
    try:
        return (await accounts.ledger.status(user)).own.granted
    finally:
        await accounts.close()


async def test_a_grant_replayed_to_two_processes_is_applied_once(
    two_services: tuple[LookupService, LookupService, Settings],
) -> None:
    one, two, settings = two_services
    grant = Request(ADMIN, "/code admin grant <@U1> 5", is_admin=True, request_id="slack:cmd:T9")
    first = await one.handle(grant)
    assert first.kind is ReplyKind.INFO and first.text.startswith("Granted 5")
    replays = await asyncio.gather(*(service.handle(grant) for service in (one, two, two)))
    assert all(reply.replayed for reply in replays)
    assert not any("Granted" in reply.text for reply in replays)
    assert await granted_to(settings, ALICE) == 5


@pytest.mark.parametrize(
    "text", ["/code help", "/code register", "/code quota", "/code E11.99", "/code zzqxj"]
)
async def test_free_answers_are_given_once(
    two_services: tuple[LookupService, LookupService, Settings], text: str
) -> None:
    one, two, _ = two_services
    request = Request(ALICE, text, request_id=f"slack:evt:{text}")
    first = await one.handle(request)
    assert not first.replayed and first.kind is not ReplyKind.ERROR
    again = await two.handle(request)
    assert again.replayed and again.text == "That request was already answered."
    # a new request id is a new request
    assert not (await two.handle(dataclasses.replace(request, request_id="other"))).replayed


async def test_paid_and_refused_answers_replay_without_a_charge(
    two_services: tuple[LookupService, LookupService, Settings],
) -> None:
    one, two, settings = two_services
    paid = Request(ALICE, "/code E11.9", request_id="slack:evt:paid")
    assert (await one.handle(paid)).notice.startswith("0 code lookups remaining")
    assert (await two.handle(paid)).replayed
    refused = Request(ALICE, "/code I10", request_id="slack:evt:refused")
    assert (await two.handle(refused)).kind is ReplyKind.EXHAUSTED
    assert (await one.handle(refused)).replayed
    accounts = await StateAccounts.open(settings)
    try:
        assert (await accounts.ledger.status(ALICE)).own.used == 1
    finally:
        await accounts.close()


async def test_a_duplicate_never_refunds_the_original(
    two_services: tuple[LookupService, LookupService, Settings],
) -> None:
    """The second process failed to deliver its (duplicate) answer: the charge stands."""
    one, two, settings = two_services
    paid = Request(ALICE, "/code E11.9", request_id="discord:1")
    await one.handle(paid)
    help_request = Request(ALICE, "/code help", request_id="discord:2")
    await one.handle(help_request)
    assert (await two.handle(help_request)).replayed
    await two.refund(help_request)
    await two.handle(paid)  # a ledger replay
    accounts = await StateAccounts.open(settings)
    try:
        assert (await accounts.ledger.status(ALICE)).own.used == 1
    finally:
        await accounts.close()


# ---------------------------------------------------------------------- Slack, for real


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(admins=("UBOSS",)) as server:
        yield server


async def test_slack_replayed_slash_command_grants_once(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path, state_url: str
) -> None:
    """A signed `/code admin grant` replayed 3 times (within the 5-minute window) to two
    app instances on one database: 5 granted, one answer."""
    settings = dataclasses.replace(
        slack_settings(fake, tmp_path, codes_db_path), database_url=state_url
    )
    async with running_slack(fake, settings) as one, running_slack(fake, settings) as two:
        form = one.sender.command_payload("admin grant <@U0002> 5", user="UBOSS")
        body = "&".join(f"{k}={v}" for k, v in _urlencoded(form))
        first = await one.sender.post(body, "application/x-www-form-urlencoded")
        assert "Granted 5" in first.text
        for sender in (one.sender, two.sender, two.sender):
            replay = await sender.post(body, "application/x-www-form-urlencoded")
            assert replay.status == 200 and "Granted" not in replay.text
        await fake.settle(0.3)
        assert fake.of("response_url") == []
    assert await granted_to(settings, UserRef("slack", "T0001", "U0002")) == 5


async def test_slack_event_retry_to_another_process_posts_help_once(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path, state_url: str
) -> None:
    settings = dataclasses.replace(
        slack_settings(fake, tmp_path, codes_db_path), database_url=state_url
    )
    async with running_slack(fake, settings) as one, running_slack(fake, settings) as two:
        event = one.sender.mention("help", ts="1700000009.000100")
        await one.sender.event(event, event_id="Ev0HELP")
        await fake.wait_for("chat.postMessage")
        await two.sender.event(event, event_id="Ev0HELP", retry_num=1)
        for _ in range(100):
            if two.service.requests:
                break
            await asyncio.sleep(0.05)
        await fake.settle(0.3)
        assert len(fake.of("chat.postMessage")) == 1
        assert [r.request_id for r in two.service.requests] == ["slack:evt:Ev0HELP"]


def _urlencoded(form: dict[str, str]) -> list[tuple[str, str]]:
    from urllib.parse import quote_plus

    return [(quote_plus(k), quote_plus(v)) for k, v in form.items()]
