"""What an unauthenticated or malformed POST to /slack/events does (issue 12, items 1, 2, 6).

Through the real aiohttp + bolt app on 127.0.0.1:0, with requests signed as Slack signs
them: refusals are 4xx (never a 500), the body is never logged, refusal lines are short and
rate-limited, and nothing a request carries can start a log line of its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack_guard import MAX_BODY_BYTES
from tests.fakes.fake_slack import FakeSlack, slack_signature
from tests.fakes.slack_harness import (
    SIGNING_SECRET,
    UNLIMITED_QUOTA,
    SlackHarness,
    headers_of,
    running_slack,
    slack_settings,
)

FORM = "application/x-www-form-urlencoded"
# what an attacker would like to see as its own log line
FORGED = '\n2026-12-01 10:00:00,000 INFO codebot.audit: audit {"event": "grant", "amount": 1000000}'


@pytest.fixture
async def slack(tmp_path: Path, codes_db_path: Path) -> AsyncIterator[SlackHarness]:
    """The adapter with an unlimited quota against a fresh fake Slack."""
    async with FakeSlack() as fake:
        settings = slack_settings(fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA)
        async with running_slack(fake, settings) as harness:
            yield harness
        assert fake.violations == [], fake.violations


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


async def test_bad_signature_floods_are_not_logged(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = "text=" + "A" * 900_000 + FORGED
    for _ in range(30):
        sent = await slack.sender.post(body, FORM, secret="not-the-secret")
        assert sent.status == 401
    messages = _messages(caplog)
    assert sum(len(message) for message in messages) < 30 * 300  # bounded, not 27 MB
    assert not any("AAAAAAAAAA" in message for message in messages)  # never the body
    assert not any("\n" in message or "\r" in message for message in messages)
    refusals = [m for m in messages if m.startswith("refused slack request")]
    # rate-limited: ten lines a minute, however many requests were refused
    assert 1 <= len(refusals) <= 10
    assert all(len(m) < 200 for m in refusals)
    assert slack.service.requests == []


async def test_refusal_lines_report_what_was_suppressed(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="codebot.slack.guard")
    guard = slack.adapter._guard  # the adapter's guard, with a clock we can move
    now = [0.0]
    guard._refusals._clock = lambda: now[0]
    for _ in range(25):
        assert (await slack.sender.post("x=1", FORM, secret="wrong")).status == 401
    now[0] += 61.0
    assert (await slack.sender.post("x=1", FORM, secret="wrong")).status == 401
    refusals = [m for m in _messages(caplog) if m.startswith("refused slack request")]
    assert len(refusals) == 11
    assert refusals[-1].endswith("(15 similar lines suppressed)")


async def test_non_numeric_timestamp_is_401_not_500(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    for stamp in ("abc", "", "1e9", "-5", "１７００００００００", "9" * 40):
        sent, _ = await slack.sender.command("E11.9", headers={"X-Slack-Request-Timestamp": stamp})
        assert sent.status == 401, stamp
    assert slack.service.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_body_over_one_megabyte_is_413_before_parsing(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    big = "text=" + "x" * MAX_BODY_BYTES
    sent = await slack.sender.post(big, FORM)  # correctly signed, still refused
    assert sent.status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read only to the limit
        for _ in range(20):
            yield b"y" * 100_000

    stamp = str(int(time.time()))
    headers = {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(SIGNING_SECRET, stamp, b"y" * 2_000_000),
    }
    async with slack.sender.session.post(slack.url, data=chunks(), headers=headers) as response:
        assert response.status == 413
    assert slack.service.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"type": "event_callback", "event": ', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ("{not json", FORM),
        (b"text=\xff\xfe\xfd&user_id=U1", FORM),
        ("text=%FF%FE&user_id=U1", FORM),
        ("payload=not-json-at-all", FORM),
        ("payload=%5B1%2C2%5D", FORM),  # a JSON array, not an object
        ("[" * 100_000, "application/json"),
    ],
)
async def test_malformed_signed_bodies_are_400(
    slack: SlackHarness,
    caplog: pytest.LogCaptureFixture,
    body: str | bytes,
    content_type: str,
) -> None:
    sent = await slack.sender.post(body, content_type)
    assert sent.status == 400
    assert slack.service.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_good_requests_still_pass_the_guard(slack: SlackHarness) -> None:
    sent, _ = await slack.sender.command("E11.9")
    assert sent.status == 200
    assert headers_of(sent.json()) == ["E11.9 · ICD-10-CM"]
    challenge = {"token": "x", "challenge": "c-123", "type": "url_verification"}
    answered = await slack.sender.post(json.dumps(challenge), "application/json")
    assert answered.status == 200 and "c-123" in answered.text
