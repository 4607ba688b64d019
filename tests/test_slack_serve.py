"""The issue's done-when, as a subprocess: `codebot serve slack --port 0` against a fake Slack.

SLACK_SIGNING_SECRET=… SLACK_BOT_TOKEN=… SLACK_API_URL=http://127.0.0.1:P/api/
codebot serve slack --port 0  → prints "listening on HOST:PORT"; answers a signed `/code E11.9`
with the card, rejects a wrongly signed post with 401, answers an app_mention by calling
chat.postMessage on the fake, and exits 0 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp

from tests.fakes.fake_slack import FakeSlack, SlackSender
from tests.fakes.slack_harness import (
    ROOT,
    SIGNING_SECRET,
    spawn_serve_slack,
    stopped_server_logs,
)

LISTENING = re.compile(r"listening on (\S+):(\d+)")


async def _read_port(process: asyncio.subprocess.Process, timeout: float = 30.0) -> int:
    assert process.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        line = await asyncio.wait_for(process.stdout.readline(), deadline - loop.time())
        if not line:
            break
        match = LISTENING.search(line.decode())
        if match:
            return int(match.group(2))
    if process.returncode is None:
        process.kill()
        await process.wait()
    assert process.stderr is not None
    errors = (await process.stderr.read()).decode()[-2000:]
    raise AssertionError(f"the server never printed its port; stderr:\n{errors}")


async def test_codebot_serve_slack_subprocess(tmp_path: Path, codes_db_path: Path) -> None:
    async with FakeSlack() as fake:
        process = await spawn_serve_slack(
            tmp_path,
            codes_db_path,
            {
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_BOT_TOKEN": fake.token,
                "SLACK_API_URL": fake.api_url,
            },
        )
        try:
            port = await _read_port(process)
            url = f"http://127.0.0.1:{port}/slack/events"
            async with aiohttp.ClientSession() as session:
                sender = SlackSender(url, SIGNING_SECRET, fake, session=session)
                sent, _ = await sender.command("E11.9")
                assert sent.status == 200
                assert sent.json()["blocks"][0]["text"]["text"] == "E11.9 · ICD-10-CM"
                forged, _ = await sender.command("E11.9", secret="wrong-secret")
                assert forged.status == 401
                await sender.event(sender.mention("I10", ts="1700000009.000100"))
                posts = await fake.wait_for("chat.postMessage", timeout=10)
                assert posts[0].args["thread_ts"] == "1700000009.000100"
                assert "I10" in posts[0].args["text"]
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 20)
            assert code == 0
        finally:
            logs = await stopped_server_logs(process)
        assert fake.token not in logs and SIGNING_SECRET not in logs
        assert "Traceback" not in logs
        assert fake.violations == []


def test_manifest_declares_what_the_adapter_uses() -> None:
    manifest = (ROOT / "slack-app-manifest.yml").read_text(encoding="utf-8")
    for needed in (
        "command: /code",
        "commands",
        "chat:write",
        "app_mentions:read",
        "im:history",
        "im:read",
        "im:write",
        "users:read",
        "app_mention",
        "message.im",
        "is_enabled: true",
        "/slack/events",
    ):
        assert needed in manifest, needed
