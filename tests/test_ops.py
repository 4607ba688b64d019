"""Operations: /healthz, /readyz, /metrics (Slack server and the Discord process's port),
JSON logs, and unknown configuration keys."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import aiohttp
import pytest

from bot.config import ConfigError, Settings
from bot.json_logs import JsonFormatter
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.slack_harness import running_slack, slack_settings
from tests.ops_server import running_ops


async def test_slack_server_readyz_and_metrics(tmp_path: Path, codes_db_path: Path) -> None:
    async with FakeSlack() as fake:
        settings = slack_settings(fake, tmp_path, codes_db_path)
        async with running_slack(fake, settings) as slack:
            sent, _ = await slack.sender.command("E11.9")
            assert sent.status == 200
            base = slack.url.removesuffix("/slack/events")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/readyz") as ready:
                    assert ready.status == 200
                    assert await ready.json() == {"ready": True, "state": "ok", "codes": "ok"}
                async with http.get(f"{base}/metrics") as metrics:
                    text = await metrics.text()
    assert metrics.status == 200 and metrics.content_type.startswith("text/plain")
    assert 'codebot_requests_total{command="lookup",outcome="cards",platform="slack"}' in text
    assert 'codebot_charges_total{platform="slack",result="charged"}' in text
    assert "codebot_request_seconds_bucket" in text


async def test_discord_ops_port_reports_a_broken_state_database(
    tmp_path: Path, codes_db_path: Path
) -> None:
    async with (
        running_ops(tmp_path, codes_db_path) as (service, port),
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"http://127.0.0.1:{port}/healthz") as alive:
            assert alive.status == 200
        async with http.get(f"http://127.0.0.1:{port}/readyz") as ready:
            assert ready.status == 200
        await service._accounts.store.close()  # type: ignore[attr-defined]
        async with http.get(f"http://127.0.0.1:{port}/readyz") as broken:
            body = await broken.json()
        assert broken.status == 503
        assert body["ready"] is False and body["codes"] == "ok"
        assert body["state"] != "ok"


def test_unknown_config_keys_are_an_error() -> None:
    with pytest.raises(ConfigError, match=r"databse_url \(did you mean database_url\?\)"):
        Settings.from_env({}, {"databse_url": "postgresql://db/codebot"})
    assert Settings.from_env({}, {"database_url": "sqlite:///x"}).database_url == "sqlite:///x"
    with pytest.raises(ConfigError, match="CODEBOT_DATABASE_POOL_SIZE"):
        Settings.from_env({"CODEBOT_DATABASE_POOL_SIZE": "0"})
    with pytest.raises(ConfigError, match="CODEBOT_LOG_FORMAT"):
        Settings.from_env({"CODEBOT_LOG_FORMAT": "xml"})


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord(
        "codebot.slack", logging.WARNING, __file__, 1, "user typed %s", ("a\nforged line",), None
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "codebot.slack"
    assert entry["message"] == "user typed a\nforged line"


def test_unreachable_state_database_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], codes_db_path: Path
) -> None:
    from bot.cli import main

    monkeypatch.setenv("CODEBOT_CODES_DB", str(codes_db_path))
    monkeypatch.setenv("CODEBOT_DATABASE_URL", "postgresql://codebot:hunter2@127.0.0.1:1/codebot")
    assert main(["ask", "/code help"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "codebot: state database postgresql://codebot@127.0.0.1:1/codebot cannot be reached: "
        "ConnectionRefusedError"
    ]
    assert "hunter2" not in err
