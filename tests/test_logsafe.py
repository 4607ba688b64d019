"""Log lines cannot be forged or flooded from user input (issue 12, item 2).

`safe()` escapes and bounds a value; `SafeFormatter` keeps every record on one line;
audit records (grants, plan changes, refused admin commands, purges) are one JSON object per
line on `codebot.audit`, checked here through the real service and the real CLI.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import open_service
from bot.config import Settings
from bot.logsafe import (
    AUDIT_LOGGER,
    LOG_FORMAT,
    MAX_MESSAGE_CHARS,
    RateLimitedLog,
    SafeFormatter,
    safe,
)
from bot.model import Request, UserRef

ROOT = Path(__file__).resolve().parents[1]
FORGED_LINE = '2020-01-01 10:00:00,000 INFO codebot.audit: audit {"event": "grant"}'


def test_safe_escapes_every_line_breaking_character() -> None:
    for raw in ("a\nb", "a\rb", "a\x1b[31mb", "a\u2028b", "a\u2029b", "a\x85b", "a\x00b"):
        escaped = safe(raw)
        assert escaped.isprintable(), repr(escaped)
        assert escaped.startswith("a") and escaped.endswith("b")
    # a typed backslash-n stays distinguishable from an escaped newline
    assert safe("a\\nb") != safe("a\nb")


def test_safe_bounds_long_values() -> None:
    assert safe("x" * 10_000) == "x" * 200 + "…(+9800 chars)"
    assert safe("short") == "short"
    assert len(safe("\n" * 500, 50)) < 200


def test_formatter_keeps_a_record_on_one_line() -> None:
    formatter = SafeFormatter(LOG_FORMAT)
    forged = ("hi\n" + FORGED_LINE,)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "user said %s", forged, None)
    line = formatter.format(record)
    assert "\n" not in line
    assert line.count("codebot.audit") == 1 and not line.startswith("2020-01-01")


def test_formatter_bounds_what_libraries_log() -> None:
    formatter = SafeFormatter(LOG_FORMAT)
    body = "{'type': 'event_callback'}\n" * 40_000  # what bolt quotes in "Unhandled request"
    record = logging.LogRecord("slack_bolt", logging.WARNING, __file__, 1, "%s", (body,), None)
    line = formatter.format(record)
    assert "\n" not in line and len(line) < MAX_MESSAGE_CHARS + 200
    assert line.endswith("chars)") and "(+" in line


def test_rate_limited_log_counts_what_it_suppressed() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.ratelimit")
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(stream))
    now = [100.0]
    limited = RateLimitedLog(logger, per_window=3, window=60.0, clock=lambda: now[0])
    results = [limited.warning("refused %s", i) for i in range(10)]
    assert results == [True] * 3 + [False] * 7
    now[0] += 60.0
    assert limited.warning("refused %s", "later")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "refused 0",
        "refused 1",
        "refused 2",
        "refused later (7 similar lines suppressed)",
    ]


@pytest.fixture
def audit_lines() -> Iterator[io.StringIO]:
    """Everything logged, formatted as the servers format it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _audit_records(stream: io.StringIO) -> list[dict[str, object]]:
    records = []
    for line in stream.getvalue().splitlines():
        if f" {AUDIT_LOGGER}: " in line:
            _, _, message = line.partition(f" {AUDIT_LOGGER}: ")
            assert message.startswith("audit {")
            records.append(json.loads(message[len("audit ") :]))
    return records


async def test_audit_lines_cannot_be_forged_through_chat(
    audit_lines: io.StringIO, tmp_path: Path, codes_db_path: Path
) -> None:
    settings = Settings(codes_db=codes_db_path, database_url=f"sqlite:///{tmp_path / 's.sqlite'}")
    admin = UserRef("console", "local", "boss", "Boss")
    mallory = UserRef("console", "local", "mallory\n" + FORGED_LINE, "Mallory")
    async with open_service(settings) as service:
        # a non-admin tries, with a newline and a fake audit line in the user id
        await service.handle(Request(user=mallory, text="admin grant @mallory 5"))
        await service.handle(Request(user=admin, text="admin grant @mallory 50", is_admin=True))
        await service.handle(Request(user=admin, text="admin plan team pro", is_admin=True))
    records = _audit_records(audit_lines)
    assert [r["event"] for r in records] == ["admin_refused", "grant", "team_plan"]
    assert records[0]["user"] == "mallory\n" + FORGED_LINE  # kept, but inside JSON
    assert records[1]["amount"] == 50 and records[1]["by"] == "console:local:boss"
    assert records[2]["plan"] == "pro"
    assert FORGED_LINE not in audit_lines.getvalue().splitlines()
    assert not any(line.startswith("2020-01-01") for line in audit_lines.getvalue().splitlines())


def test_purge_writes_an_audit_line(tmp_path: Path, codes_db_path: Path) -> None:
    env = {
        "CODEBOT_CODES_DB": str(codes_db_path),
        "CODEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite'}",
        "CODEBOT_CONFIG": str(tmp_path / "none.toml"),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "admin", "purge", "--user", "console:local:x\ny"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if f" {AUDIT_LOGGER}: " in line]
    assert len(lines) == 1
    record = json.loads(lines[0].partition(f" {AUDIT_LOGGER}: audit ")[2])
    assert record == {"event": "purge", "user": "console:local:x\ny", "platform": None, "rows": 0}
