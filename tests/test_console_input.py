"""The console survives bytes that are not UTF-8 (issue 12, item 8): they are replaced and
the rest of the input is still answered. A real `codebot console` subprocess, piped stdin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_invalid_utf8_on_stdin_is_replaced_not_fatal(codes_db_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "codebot.toml"
    config.write_text('[quota]\nguest_plan = "unlimited"\n', encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))},
        "CODEBOT_CODES_DB": str(codes_db_path),
        "CODEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}",
        "CODEBOT_CONFIG": str(config),
        "PYTHONIOENCODING": "utf-8",  # strict decoding, as on a UTF-8 terminal
    }
    stdin = b"E11.9\n\xff\xfe\xc3(garbage \xed\xa0\x80\nI10\n\x80\x80\x80\nmodifier LT\n"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "--user", "c1"],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    stdout = done.stdout.decode("utf-8")
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, stderr
    assert "Traceback" not in stderr and "UnicodeDecodeError" not in stderr
    # every line after the bad bytes is still answered
    for expected in ("E11.9", "Type 2 diabetes", "I10", "Essential (primary) hypertension", "LT"):
        assert expected in stdout, expected
