"""Run the real Slack adapter (bolt AsyncApp + aiohttp) on 127.0.0.1:0 against `FakeSlack`.

Shared by tests/test_slack_*.py and benchmarks/slack_bench.py. The service is the real
`LookupService` from `bot.app.open_service`, over the real code database and a temporary
state database; `RecordingService` wraps it to let tests see the Requests the adapter built.

`running_socket_mode` runs the whole `serve_slack` (Socket Mode: `SLACK_APP_TOKEN` set) until
its stop event is set; the app connects to the fake's Socket Mode websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapters.slack_app import ADAPTER_KEY, ReplyService, SlackAdapter, make_web_app, serve_slack
from bot.config import Settings
from bot.model import Reply, Request
from tests.fakes.fake_slack import FakeSlack, SlackSender, SocketConnection, SocketModeSender

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # a test value, not a real secret
BOT_TOKEN = "xoxb-test-token"
UNLIMITED_QUOTA: Mapping[str, Any] = {"guest_plan": "unlimited"}
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RecordingService:
    """Wraps a service and remembers every Request it was asked (with an optional delay)."""

    inner: ReplyService
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)

    async def handle(self, request: Request) -> Reply:
        """Record, optionally wait (to simulate a slow answer), then delegate."""
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        return await self.inner.handle(request)

    async def delivered(self, request: Request) -> None:
        """Delegate the delivery record."""
        await self.inner.delivered(request)

    async def readiness(self) -> dict[str, str]:
        """Delegate the readiness checks."""
        return await self.inner.readiness()


@dataclass
class SlackHarness:
    """A running adapter: its URL, the fake Slack, a signed sender and the recorded requests."""

    fake: FakeSlack
    sender: SlackSender
    service: RecordingService
    adapter: SlackAdapter
    url: str
    settings: Settings


def slack_settings(
    fake: FakeSlack,
    state_dir: Path,
    codes_db: Path,
    *,
    quota: Mapping[str, Any] | None = None,
    state_name: str = "state.sqlite",
    socket_mode: bool = False,
) -> Settings:
    """Settings pointing at the fake Slack, a temporary state DB and the real code DB.

    `socket_mode`: the app-level token is set and no signing secret (a Socket Mode-only app).
    """
    return Settings(
        codes_db=codes_db,
        database_url=f"sqlite:///{state_dir / state_name}",
        quota=dict(quota or {}),
        slack_bot_token=fake.token,
        slack_signing_secret="" if socket_mode else SIGNING_SECRET,
        slack_app_token=fake.app_token if socket_mode else "",
        slack_api_url=fake.api_url,
    )


@asynccontextmanager
async def open_real_service(
    settings: Settings, *, warm: bool = False
) -> AsyncIterator[ReplyService]:
    """The real LookupService for `settings` (code DB + state DB); `warm` as a server does."""
    from bot.app import open_service

    async with open_service(settings, warm=warm) as service:
        yield service


@asynccontextmanager
async def running_slack(
    fake: FakeSlack,
    settings: Settings,
    *,
    ack_budget: float | None = None,
    delay: float = 0.0,
    warm: bool = False,
) -> AsyncIterator[SlackHarness]:
    """Start the adapter's aiohttp app on 127.0.0.1:0 with the real service."""
    async with open_real_service(settings, warm=warm) as inner:
        service = RecordingService(inner, delay=delay)
        extra: dict[str, Any] = {} if ack_budget is None else {"ack_budget": ack_budget}
        web_app = make_web_app(settings, service, **extra)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        url = f"http://127.0.0.1:{port}/slack/events"
        connector = aiohttp.TCPConnector(limit=200)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                sender = SlackSender(url, SIGNING_SECRET, fake, session=session)
                yield SlackHarness(fake, sender, service, web_app[ADAPTER_KEY], url, settings)
        finally:
            await runner.cleanup()


@dataclass
class SocketModeHarness:
    """`serve_slack` running in Socket Mode against `FakeSlack`, connected."""

    fake: FakeSlack
    sender: SocketModeSender
    service: RecordingService
    connection: SocketConnection
    stop: asyncio.Event
    task: asyncio.Task[None]
    settings: Settings


@asynccontextmanager
async def running_socket_mode(
    fake: FakeSlack, settings: Settings, *, service: ReplyService | None = None
) -> AsyncIterator[SocketModeHarness]:
    """Run `serve_slack` (port 0) in Socket Mode until the block ends, then stop it.

    Yields once the app's websocket is open on the fake (hello sent). The real service is
    opened for `settings` unless `service` is given (to share one between two "processes").
    """
    async with contextlib.AsyncExitStack() as stack:
        inner = service
        if inner is None:
            inner = await stack.enter_async_context(open_real_service(settings))
        recording = RecordingService(inner)
        stop = asyncio.Event()
        already = len(fake.connections)
        task = asyncio.create_task(
            serve_slack(settings, recording, port=0, host="127.0.0.1", stop=stop)
        )
        try:
            connected = asyncio.ensure_future(fake.wait_connection(already + 1, timeout=10))
            await asyncio.wait({connected, task}, return_when=asyncio.FIRST_COMPLETED)
            if not connected.done():  # serve_slack ended before connecting: show why
                connected.cancel()
                await task
                raise AssertionError("serve_slack returned without connecting")
            connection = connected.result()
            yield SocketModeHarness(
                fake, SocketModeSender(fake), recording, connection, stop, task, settings
            )
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


# ---------------------------------------------------------------- reading payloads


def headers_of(payload: Mapping[str, Any] | None) -> list[str]:
    """Texts of the header blocks (one per full code card); none for no payload."""
    return [b["text"]["text"] for b in (payload or {}).get("blocks", []) if b["type"] == "header"]


def buttons_of(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every button of a payload, in order (actions rows and section accessories)."""
    found: list[dict[str, Any]] = []
    for block in payload.get("blocks", []):
        if block["type"] == "actions":
            found.extend(block["elements"])
        elif block.get("accessory", {}).get("type") == "button":
            found.append(block["accessory"])
    return found


# ---------------------------------------------------------------- the real process


async def spawn_serve_slack(
    tmp_path: Path, codes_db_path: Path, slack_env: Mapping[str, str]
) -> asyncio.subprocess.Process:
    """`codebot serve slack --port 0 --host 127.0.0.1` as a subprocess, unlimited quota.

    `slack_env` holds the SLACK_* settings of the mode under test; the signing secret and
    app token the test run itself may have are not inherited, so the mode is only that.
    """
    config = tmp_path / "codebot.toml"
    config.write_text('[quota]\nguest_plan = "unlimited"\n', encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if k not in _SLACK_MODE_SETTINGS},
        "CODEBOT_CODES_DB": str(codes_db_path),
        "CODEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}",
        "CODEBOT_CONFIG": str(config),
        "PYTHONUNBUFFERED": "1",
        **slack_env,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "slack",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


_SLACK_MODE_SETTINGS = frozenset({"SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"})


async def stopped_server_logs(process: asyncio.subprocess.Process) -> str:
    """The server's stderr once it has exited (killed first if a failed test left it up)."""
    if process.returncode is None:
        process.kill()
        await process.wait()
    assert process.stderr is not None
    return (await process.stderr.read()).decode()
