"""Done-when of issue 5: `codebot serve discord` as a real process against the fake Discord.

With DISCORD_TOKEN/DISCORD_API_URL/DISCORD_GATEWAY_URL pointing at the fake, the process logs
in, answers a dispatched `/code E11.9` with an embed through the interaction callback,
answers autocomplete with ≤ 25 choices, replies to a mention, and exits 0 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from adapters.discord_embeds import EPHEMERAL, validate_choices, validate_message
from bot.config import DEFAULT_CODES_DB, PROJECT_ROOT
from tests.fakes.fake_discord import FakeDiscord

CODES_DB = Path(os.environ.get("CODEBOT_CODES_DB") or DEFAULT_CODES_DB).resolve()
TOKEN = "fake-token-s3cr3t-value"
pytestmark = pytest.mark.skipif(
    not CODES_DB.is_file(), reason=f"code DB {CODES_DB} not built (make build-data)"
)


def _codebot() -> list[str]:
    script = Path(sys.executable).parent / "codebot"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


@pytest.mark.slow
async def test_codebot_serve_discord_process(tmp_path: Path) -> None:
    config = tmp_path / "codebot.toml"
    config.write_text('[quota]\nguest_plan = "unlimited"\n', encoding="utf-8")
    async with FakeDiscord() as fake:
        env = {
            **os.environ,
            "DISCORD_TOKEN": TOKEN,
            "DISCORD_API_URL": fake.api_url,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
            "CODEBOT_CODES_DB": str(CODES_DB),
            "CODEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/state.sqlite",
            "CODEBOT_CONFIG": str(config),
        }
        log_path = tmp_path / "serve.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *_codebot(),
                "serve",
                "discord",
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
            try:
                await fake.wait_identified(timeout=60)

                slash = fake.slash_payload("E11.9")
                await fake.dispatch("INTERACTION_CREATE", slash)
                answer = await fake.wait_for_call(
                    lambda c: c.path == f"/interactions/{slash['id']}/{slash['token']}/callback",
                    timeout=15,
                )
                assert answer.json["type"] == 4
                message = answer.message()
                assert validate_message(message) == []
                assert message["flags"] & EPHEMERAL
                assert message["embeds"][0]["title"].startswith("E11.9")

                typed = fake.autocomplete_payload("diabetes")
                await fake.dispatch("INTERACTION_CREATE", typed)
                choices = await fake.wait_for_call(
                    lambda c: c.path.startswith(f"/interactions/{typed['id']}/"), timeout=15
                )
                assert choices.json["type"] == 8
                assert 1 <= len(choices.json["data"]["choices"]) <= 25
                assert validate_choices(choices.json["data"]["choices"]) == []

                mention = fake.message_payload(f"<@{fake.bot_id}> I10")
                await fake.dispatch("MESSAGE_CREATE", mention)
                reply = await fake.wait_for_call(
                    lambda c: c.path == f"/channels/{mention['channel_id']}/messages", timeout=15
                )
                assert reply.json["message_reference"]["message_id"] == int(mention["id"])
                assert validate_message(reply.json) == []
                assert reply.json["embeds"][0]["title"].startswith("I10")

                process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), 20) == 0
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        output = log_path.read_text(errors="replace")
        assert "Traceback" not in output, output
        assert TOKEN not in output  # the token is never logged
