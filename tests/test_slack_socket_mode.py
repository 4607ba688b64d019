"""Socket Mode (`SLACK_APP_TOKEN` set), end to end against a fake Slack on 127.0.0.1:0.

The real `serve_slack` runs (bolt AsyncApp + slack_sdk's aiohttp Socket Mode client) over the
real service; `FakeSlack` answers `apps.connections.open` at `SLACK_API_URL` with a websocket
URL of its own and behaves there like Slack's Socket Mode server: hello, envelopes pushed by
the test, acks recorded. Every Block Kit payload (ack payloads, chat.* calls, response_url
posts) is checked against Slack's limits; each test ends by asserting no violations.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack_app import serve_slack
from adapters.slack_blocks import validate_blocks
from tests.fakes.fake_slack import FakeSlack, SocketModeSender
from tests.fakes.slack_harness import (
    UNLIMITED_QUOTA,
    RecordingService,
    SocketModeHarness,
    buttons_of,
    headers_of,
    open_real_service,
    running_socket_mode,
    slack_settings,
    spawn_serve_slack,
    stopped_server_logs,
)

LIMITED_QUOTA = {"plans": {"guest": {"limit": 2, "period": "lifetime"}}}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    """A fresh fake Slack per test; fails the test if any payload broke Block Kit limits."""
    async with FakeSlack() as slack:
        yield slack
        assert slack.violations == [], slack.violations


@pytest.fixture
async def socket(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> AsyncIterator[SocketModeHarness]:
    """`serve_slack` in Socket Mode (no signing secret) with an unlimited quota, connected."""
    settings = slack_settings(
        fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA, socket_mode=True
    )
    async with running_socket_mode(fake, settings) as harness:
        yield harness


# ---------------------------------------------------------------- connecting


async def test_connects_through_slack_api_url_with_the_app_token(
    socket: SocketModeHarness,
) -> None:
    opened = socket.fake.of("apps.connections.open")
    assert len(opened) == 1
    # the app-level token, not the bot token, and sent to SLACK_API_URL (the fake)
    assert opened[0].headers["authorization"] == f"Bearer {socket.fake.app_token}"
    assert socket.connection.open
    assert socket.fake.acks == []  # hello needs no answer


# ---------------------------------------------------------------- slash command


async def test_slash_command_is_acked_with_the_card(socket: SocketModeHarness) -> None:
    ack, response_url = await socket.sender.command("E11.9", trigger_id="1.2.socket-trigger")
    assert ack.payload is not None
    validate_blocks(ack.payload)
    assert headers_of(ack.payload) == ["E11.9 · ICD-10-CM"]
    assert ack.payload["response_type"] == "ephemeral"
    assert "E11.9" in ack.payload["text"]
    assert ack.connection == socket.connection.number
    # answered in the ack: nothing through response_url, one request with the trigger id
    await socket.fake.settle(0.2)
    assert socket.fake.messages() == []
    assert response_url  # carried, unused
    (request,) = socket.service.requests
    assert request.request_id == "slack:cmd:1.2.socket-trigger"
    assert (request.user.platform, request.user.tenant_id, request.user.user_id) == (
        "slack",
        "T0001",
        "U0001",
    )


async def test_slow_answer_is_acked_at_once_then_sent_to_response_url(
    socket: SocketModeHarness,
) -> None:
    socket.service.delay = 2.5  # longer than the adapter's 2 s ack budget
    started = time.monotonic()
    ack, response_url = await socket.sender.command("I10")
    assert time.monotonic() - started < 3.0  # Slack's limit for an ack
    assert not ack.payload  # an empty ack
    posts = await socket.fake.wait_for("response_url", timeout=10)
    assert posts[0].hook == response_url.rsplit("/", 1)[1]
    validate_blocks(posts[0].args)
    assert headers_of(posts[0].args) == ["I10 · ICD-10-CM"]
    assert posts[0].args["response_type"] == "ephemeral"


async def test_share_button_over_socket_mode_posts_in_channel(
    socket: SocketModeHarness,
) -> None:
    ack, _ = await socket.sender.command("E11.9")
    assert ack.payload is not None
    button = buttons_of(ack.payload)[0]
    click_ack, response_url = await socket.sender.click(button["value"], button["action_id"])
    assert not click_ack.payload  # a button ack carries no content
    posts = await socket.fake.wait_for("response_url")
    assert posts[0].hook == response_url.rsplit("/", 1)[1]
    validate_blocks(posts[0].args)
    assert posts[0].args["response_type"] == "in_channel"
    assert headers_of(posts[0].args) == ["E11.9 · ICD-10-CM"]


# ---------------------------------------------------------------- events


async def test_app_mention_envelope_posts_in_the_thread(socket: SocketModeHarness) -> None:
    event = socket.sender.mention("E11.9", channel="C0042", ts="1700000100.000200")
    ack = await socket.sender.event(event, event_id="Ev0SOCKET1")
    assert not ack.payload  # Events API: an empty ack, the answer follows
    (post,) = await socket.fake.wait_for("chat.postMessage")
    validate_blocks(post.args)
    assert post.args["channel"] == "C0042"
    assert post.args["thread_ts"] == "1700000100.000200"
    assert headers_of(post.args) == ["E11.9 · ICD-10-CM"]
    assert socket.service.requests[0].request_id == "slack:evt:Ev0SOCKET1"


async def test_direct_message_envelope_answers_in_the_dm(socket: SocketModeHarness) -> None:
    await socket.sender.event(socket.sender.direct_message("I10", channel="D0042"))
    (post,) = await socket.fake.wait_for("chat.postMessage")
    validate_blocks(post.args)
    assert post.args["channel"] == "D0042"
    assert "thread_ts" not in post.args
    assert headers_of(post.args) == ["I10 · ICD-10-CM"]


async def test_redelivered_event_is_neither_charged_nor_posted_twice(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> None:
    settings = slack_settings(fake, tmp_path, codes_db_path, quota=LIMITED_QUOTA, socket_mode=True)
    async with running_socket_mode(fake, settings) as socket:
        event = socket.sender.mention("E11.9", ts="1700000200.000100")
        first = await socket.sender.event(event, event_id="Ev0REDELIVER")
        await fake.wait_for("chat.postMessage")
        # Slack redelivers the same event (same event_id) in a new envelope, marked as a retry
        again = await socket.sender.event(event, event_id="Ev0REDELIVER", retry_attempt=1)
        assert again.envelope_id != first.envelope_id
        assert not again.payload
        await fake.settle(0.3)
        assert len(fake.of("chat.postMessage")) == 1
        assert [r.request_id for r in socket.service.requests] == ["slack:evt:Ev0REDELIVER"]
        # one lookup spent of two: the next one is allowed, the one after is refused
        allowed, _ = await socket.sender.command("I10")
        assert headers_of(allowed.payload) == ["I10 · ICD-10-CM"]
        refused, _ = await socket.sender.command("A0425")
        assert headers_of(refused.payload) == []


async def test_event_retry_on_another_connection_is_charged_once(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> None:
    """Two app processes (two connections, one state DB); Slack retries on the other one."""
    settings = slack_settings(fake, tmp_path, codes_db_path, quota=LIMITED_QUOTA, socket_mode=True)
    async with (
        running_socket_mode(fake, settings) as one,
        running_socket_mode(fake, settings) as two,
    ):
        assert one.connection.number != two.connection.number
        event = one.sender.mention("E11.9", ts="1700000300.000100")
        await one.sender.event(event, event_id="Ev0OTHER", connection=one.connection)
        await fake.wait_for("chat.postMessage")
        await two.sender.event(
            event, event_id="Ev0OTHER", retry_attempt=1, connection=two.connection
        )
        await _answered(two)  # answered (not charged, not posted: see the next test)
        allowed, _ = await one.sender.command("I10", connection=one.connection)
        assert headers_of(allowed.payload) == ["I10 · ICD-10-CM"]
        refused, _ = await one.sender.command("A0425", connection=one.connection)
        assert headers_of(refused.payload) == []


async def _answered(harness: SocketModeHarness, count: int = 1) -> None:
    """Wait until `harness`'s service has been asked `count` requests."""
    for _ in range(100):
        if len(harness.service.requests) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(harness.service.requests)} requests, expected {count}")


async def test_event_retry_on_another_connection_is_posted_once(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> None:
    settings = slack_settings(
        fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA, socket_mode=True
    )
    async with (
        running_socket_mode(fake, settings) as one,
        running_socket_mode(fake, settings) as two,
    ):
        event = one.sender.mention("E11.9", ts="1700000400.000100")
        await one.sender.event(event, event_id="Ev0TWICE", connection=one.connection)
        await fake.wait_for("chat.postMessage")
        await two.sender.event(
            event, event_id="Ev0TWICE", retry_attempt=1, connection=two.connection
        )
        await _answered(two)
        await fake.settle(0.3)
        assert len(fake.of("chat.postMessage")) == 1


# ---------------------------------------------------------------- connection lifecycle


async def test_reconnects_when_slack_asks_to_disconnect(socket: SocketModeHarness) -> None:
    fake = socket.fake
    await fake.request_disconnect("refresh_requested")
    await fake.wait_connection(socket.connection.number + 1)
    assert len(fake.of("apps.connections.open")) == 2  # a fresh URL for the new socket
    ack, _ = await socket.sender.command("E11.9")
    assert headers_of(ack.payload) == ["E11.9 · ICD-10-CM"]
    assert ack.connection == socket.connection.number + 1
    for _ in range(50):  # the old socket is closed by the client
        if not socket.connection.open:
            break
        await asyncio.sleep(0.1)
    assert not socket.connection.open
    assert socket.connection.closed_by == "client"


async def test_stop_closes_the_websocket_cleanly(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> None:
    settings = slack_settings(
        fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA, socket_mode=True
    )
    async with running_socket_mode(fake, settings) as socket:
        ack, _ = await socket.sender.command("E11.9")
        assert headers_of(ack.payload) == ["E11.9 · ICD-10-CM"]
        socket.stop.set()
        await asyncio.wait_for(socket.task, 15)
        assert socket.task.exception() is None
        (connection,) = await fake.wait_disconnected(timeout=5)
    assert connection.closed_by == "client"  # the app sent the close frame
    assert connection.close_code == 1000
    await asyncio.sleep(0.3)  # and did not reconnect
    assert len(fake.of("apps.connections.open")) == 1
    assert fake.open_connections() == []


async def test_stop_while_still_connecting_is_clean(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> None:
    """A wrong app token: apps.connections.open keeps failing; stop must still work."""
    settings = slack_settings(
        fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA, socket_mode=True
    )
    settings = dataclasses.replace(settings, slack_app_token="xapp-wrong")
    async with open_real_service(settings) as service:
        stop = asyncio.Event()
        task = asyncio.create_task(
            serve_slack(settings, RecordingService(service), port=0, host="127.0.0.1", stop=stop)
        )
        await fake.wait_for("apps.connections.open")
        stop.set()
        await asyncio.wait_for(task, 10)
    assert fake.connections == []


async def test_sigterm_stops_the_socket_mode_server(tmp_path: Path, codes_db_path: Path) -> None:
    """`codebot serve slack` with SLACK_APP_TOKEN: connects, answers, exits 0 on SIGTERM."""
    async with FakeSlack() as fake:
        process = await spawn_serve_slack(
            tmp_path,
            codes_db_path,
            {
                "SLACK_BOT_TOKEN": fake.token,
                "SLACK_APP_TOKEN": fake.app_token,
                "SLACK_API_URL": fake.api_url,
            },
        )
        try:
            connection = await fake.wait_connection(1, timeout=30)
            sender = SocketModeSender(fake)
            ack, _ = await sender.command("E11.9", timeout=10)
            assert headers_of(ack.payload) == ["E11.9 · ICD-10-CM"]
            await sender.event(sender.mention("I10", ts="1700000500.000100"))
            (post,) = await fake.wait_for("chat.postMessage", timeout=10)
            assert post.args["thread_ts"] == "1700000500.000100"
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 20) == 0
            await fake.wait_disconnected(timeout=5)
            assert connection.closed_by == "client"
        finally:
            logs = await stopped_server_logs(process)
        assert fake.token not in logs and fake.app_token not in logs
        assert "Traceback" not in logs
        assert fake.violations == []
