"""The freemium flow end to end through `codebot ask`, one process per chat turn.

guest: 1 lookup → refused with the register hint → `/code register` → 5 more → … → admin.
Each turn is a new process on the same state file, as separate CLI invocations would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
Ask = Callable[..., str]


def _codebot() -> list[str]:
    script = Path(sys.executable).with_name("codebot")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "bot.cli"]  # not installed (e.g. a bare checkout)


@pytest.fixture
def ask(tmp_path: Path, codes_db_path: Path) -> Ask:
    env = {
        **os.environ,
        "CODEBOT_CODES_DB": str(codes_db_path),
        "CODEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'state' / 'state.sqlite'}",
        "CODEBOT_CONFIG": str(tmp_path / "absent.toml"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }

    def run(text: str, user: str = "u1", team: str = "t1", *, admin: bool = False) -> str:
        command = [*_codebot(), "ask", "--user", user, "--team", team, text]
        if admin:
            command.append("--admin")
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def test_guest_register_flow(ask: Ask) -> None:
    first = ask("/code E11.9")
    assert "Type 2 diabetes mellitus without complications" in first
    assert "0 code lookups remaining (guest plan)." in first

    refused = ask("/code E11.9")
    assert "Type 2 diabetes" not in refused  # no code content when exhausted
    assert "Guest accounts are limited to 1 lookup." in refused
    assert "/code register" in refused

    assert "1 used" in ask("/code quota")
    registered = ask("/code register")
    assert "5 code lookups remaining (registered plan)." in registered
    assert "already registered" in ask("/code register")

    second = ask("/code I10")
    assert "Essential (primary) hypertension" in second
    assert "4 code lookups remaining (registered plan)." in second

    # another user of the same team is a fresh guest; a user of another team too
    assert "0 code lookups remaining (guest plan)." in ask("/code I10", user="u2")
    assert "0 code lookups remaining (guest plan)." in ask("/code I10", team="t2")

    # admin controls: refused without --admin, granted with it
    assert "Only admins" in ask("/code admin grant u2 3")
    assert "Granted 3 code lookups to user u2." in ask("/code admin grant u2 3", admin=True)
    assert "2 code lookups remaining (guest plan)." in ask("/code E11.9", user="u2")

    recent = ask("/code recent")
    assert "u2 · E11.9" in recent and "u1 · I10" in recent
    assert "t2" not in recent
