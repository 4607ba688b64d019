"""Discord HTTP interactions endpoint: Ed25519-verified POSTs, answered by the real service.

The test plays Discord: it signs each interaction with a freshly generated Ed25519 key
(PyNaCl) whose public half is the app's `DISCORD_PUBLIC_KEY`, posts it to the endpoint
running on 127.0.0.1:0, and reads the HTTP response. Deferred answers are finished through
the interaction webhook, served by the fake Discord REST API (tests/fakes/fake_discord.py).
Payloads are the fake's Discord-shaped interaction payloads.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from nacl.signing import SigningKey

from adapters.discord_embeds import EPHEMERAL, validate_choices, validate_message
from adapters.discord_http import INTERACTIONS_PATH, DiscordInteractions
from bot.app import open_service
from bot.config import DEFAULT_CODES_DB, ConfigError, Settings
from tests.fakes.fake_discord import ADMIN_PERMISSIONS, FakeDiscord
from tests.fakes.slow_service import SlowService

CODES_DB = Path(os.environ.get("CODEBOT_CODES_DB") or DEFAULT_CODES_DB)
pytestmark = pytest.mark.skipif(not CODES_DB.is_file(), reason=f"code DB {CODES_DB} not built")


@dataclass
class Endpoint:
    """The running endpoint and a signed client playing Discord."""

    url: str
    key: SigningKey
    session: aiohttp.ClientSession
    fake: FakeDiscord

    async def post(
        self, payload: Any, *, key: SigningKey | None = None, timestamp: int | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST one interaction signed as Discord signs it; (status, JSON body)."""
        body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = (key or self.key).sign(stamp.encode() + body).signature.hex()
        headers = {
            "X-Signature-Ed25519": signature,
            "X-Signature-Timestamp": stamp,
            "Content-Type": "application/json",
        }
        async with self.session.post(self.url, data=body, headers=headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if text.startswith("{") else {}


@asynccontextmanager
async def running(
    tmp_path: Path, *, delay: float = 0.0, defer_after: float = 2.0, quota: Any = None
) -> AsyncIterator[Endpoint]:
    key = SigningKey.generate()
    async with FakeDiscord() as fake:
        settings = Settings(
            codes_db=CODES_DB,
            database_url=f"sqlite:///{tmp_path}/state.sqlite",
            discord_api_url=fake.api_url,
            discord_public_key=key.verify_key.encode().hex(),
            quota={"guest_plan": "unlimited"} if quota is None else quota,
        )
        async with open_service(settings) as real:
            service = SlowService(real, delay) if delay else real
            endpoint = DiscordInteractions(settings, service, defer_after=defer_after)
            runner = web.AppRunner(endpoint.web_app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = int(runner.addresses[0][1])
            try:
                async with aiohttp.ClientSession() as session:
                    url = f"http://127.0.0.1:{port}{INTERACTIONS_PATH}"
                    yield Endpoint(url, key, session, fake)
            finally:
                await runner.cleanup()


@pytest.fixture
async def endpoint(tmp_path: Path) -> AsyncIterator[Endpoint]:
    async with running(tmp_path) as started:
        yield started


# ---------------------------------------------------------------- verification


async def test_ping_is_answered_with_pong(endpoint: Endpoint) -> None:
    assert await endpoint.post({"type": 1, "id": "1", "application_id": "2"}) == (200, {"type": 1})


async def test_unsigned_forged_and_stale_requests_are_refused(endpoint: Endpoint) -> None:
    ping = {"type": 1, "id": "1", "application_id": "2"}
    other = SigningKey.generate()
    assert (await endpoint.post(ping, key=other))[0] == 401  # another key
    assert (await endpoint.post(ping, timestamp=int(time.time()) - 3600))[0] == 401  # replayed
    async with endpoint.session.post(endpoint.url, json=ping) as unsigned:
        assert unsigned.status == 401
    headers = {"X-Signature-Ed25519": "zz", "X-Signature-Timestamp": "not-a-number"}
    async with endpoint.session.post(endpoint.url, json=ping, headers=headers) as garbage:
        assert garbage.status == 401
    # A body changed after signing (same signature) is refused.
    stamp = str(int(time.time()))
    signature = endpoint.key.sign(stamp.encode() + b'{"type": 1}').signature.hex()
    tampered = {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": stamp}
    async with endpoint.session.post(
        endpoint.url, data=b'{"type": 2}', headers=tampered
    ) as changed:
        assert changed.status == 401


async def test_signed_garbage_gets_a_clear_400(endpoint: Endpoint) -> None:
    for body in (b"not json", b"[1, 2]", "é".encode() * 5000):
        status, answer = await endpoint.post(body)
        assert status == 400 and answer == {"error": "not an interaction"}
    status, _ = await endpoint.post({"type": 99, "id": "5"})
    assert status == 400


# ---------------------------------------------------------------- answers


async def test_slash_command_answered_in_the_response(endpoint: Endpoint) -> None:
    status, answer = await endpoint.post(endpoint.fake.slash_payload("E11.9"))
    assert status == 200 and answer["type"] == 4
    message = answer["data"]
    assert validate_message(message) == []
    assert message["flags"] & EPHEMERAL
    assert message["allowed_mentions"]["parse"] == []
    assert message["embeds"][0]["title"].startswith("E11.9")
    assert "Type 2 diabetes mellitus without complications" in message["embeds"][0]["description"]
    # In a DM too.
    _, dm = await endpoint.post(endpoint.fake.slash_payload("I10", guild_id=None))
    assert dm["data"]["embeds"][0]["title"].startswith("I10")


async def test_autocomplete_is_answered_with_choices(endpoint: Endpoint) -> None:
    status, answer = await endpoint.post(endpoint.fake.autocomplete_payload("E11.9"))
    assert status == 200 and answer["type"] == 8
    choices = answer["data"]["choices"]
    assert validate_choices(choices) == [] and 1 <= len(choices) <= 25
    assert choices[0]["value"] == "E11.9"


async def test_buttons_and_admin_rules(endpoint: Endpoint) -> None:
    fake = endpoint.fake
    _, card = await endpoint.post(fake.slash_payload("E11.9"))
    share = fake.component_payload(card["data"], "cb:run:share E11.9")
    _, shared = await endpoint.post(share)
    assert shared["type"] == 4 and not (shared["data"].get("flags") or 0) & EPHEMERAL
    assert shared["data"]["embeds"][0]["title"].startswith("E11.9")
    _, refused = await endpoint.post(fake.slash_payload("admin usage"))
    _, allowed = await endpoint.post(
        fake.slash_payload("admin usage", permissions=ADMIN_PERMISSIONS)
    )
    assert refused["data"] != allowed["data"]


async def test_slow_answer_is_deferred_then_sent_through_the_webhook(tmp_path: Path) -> None:
    async with running(tmp_path, delay=0.3, defer_after=0.05) as endpoint:
        payload = endpoint.fake.slash_payload("E11.9")
        status, answer = await endpoint.post(payload)
        assert status == 200 and answer == {"type": 5, "data": {"flags": EPHEMERAL}}
        edit = await endpoint.fake.wait_for_call(
            lambda c: (
                c.method == "PATCH"
                and c.path
                == f"/webhooks/{payload['application_id']}/{payload['token']}/messages/@original"
            )
        )
        assert edit.json["embeds"][0]["title"].startswith("E11.9")
        assert validate_message(edit.json) == []


async def test_undelivered_follow_up_is_refunded(tmp_path: Path) -> None:
    """The webhook refused the follow-up: the one guest lookup is still there."""
    async with running(tmp_path, delay=0.2, defer_after=0.05, quota={}) as endpoint:
        endpoint.fake.fail_next(r"^/webhooks/", 404, code=10015)
        await endpoint.post(endpoint.fake.slash_payload("E11.9"))
        await endpoint.fake.wait_for_call(lambda c: c.path.startswith("/webhooks/"))
        await asyncio.sleep(0.3)
        payload = endpoint.fake.slash_payload("I10")
        await endpoint.post(payload)
        edit = await endpoint.fake.wait_for_call(
            lambda c: c.path.startswith(f"/webhooks/{payload['application_id']}/{payload['token']}")
        )
        assert edit.json["embeds"][0]["title"].startswith("I10")


def test_public_key_is_validated() -> None:
    with pytest.raises(ConfigError, match="64 hex digits"):
        Settings.from_env({"DISCORD_PUBLIC_KEY": "abc"})
    with pytest.raises(ConfigError, match="DISCORD_PUBLIC_KEY is not set"):
        DiscordInteractions(Settings(), service=None)  # type: ignore[arg-type]
    key = SigningKey.generate().verify_key.encode().hex()
    assert Settings.from_env({"DISCORD_PUBLIC_KEY": key.upper()}).discord_public_key == key
