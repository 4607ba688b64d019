"""A truncated or corrupt code database is reported, never served (issue 12, item 10).

Damaged copies of the real built database: `codebot data status` says what is wrong in one
line and exits 1; every process that opens the database refuses it at start-up with the
same line (no traceback); servers also run SQLite's page-by-page quick_check.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import CodeDatabaseDamaged, open_service
from bot.codes.integrity import check_code_db
from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pristine(codes_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the real code database to damage in different ways."""
    copy = tmp_path_factory.mktemp("integrity") / "codes.sqlite"
    shutil.copyfile(codes_db_path, copy)
    return copy


def _damaged(pristine: Path, tmp_path: Path, how: str) -> Path:
    target = tmp_path / f"{how}.sqlite"
    shutil.copyfile(pristine, target)
    size = target.stat().st_size
    with target.open("r+b") as handle:
        if how == "truncated":
            handle.truncate(size // 2)
        elif how == "corrupt":
            # garbage over a run of pages in the middle of the b-trees
            handle.seek((size // 2) // 4096 * 4096)
            handle.write(os.urandom(64 * 4096))
        elif how == "garbage":
            handle.seek(0)
            handle.write(b"this is not a database" * 10)
    return target


def _cli(codes_db: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))},
        "CODEBOT_CODES_DB": str(codes_db),
        "CODEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}",
        "CODEBOT_CONFIG": str(tmp_path / "absent.toml"),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("truncated", "truncated"),
        ("corrupt", "integrity check"),
        ("garbage", "not an SQLite database"),
    ],
)
def test_data_status_reports_damage_and_exits_1(
    pristine: Path, tmp_path: Path, how: str, says: str
) -> None:
    damaged = _damaged(pristine, tmp_path, how)
    status = _cli(damaged, tmp_path, "data", "status")
    assert status.returncode == 1, status
    assert status.stdout == ""
    lines = status.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in status.stderr, status.stderr
    assert f"the code database at {damaged} is damaged" in lines[0]
    assert says in lines[0] and "codebot data build" in lines[0]


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_start_up_refuses_a_damaged_database(pristine: Path, tmp_path: Path, how: str) -> None:
    damaged = _damaged(pristine, tmp_path, how)
    asked = _cli(damaged, tmp_path, "ask", "/code E11.9")
    assert asked.returncode == 1
    assert "Traceback" not in asked.stderr
    assert asked.stderr.strip().splitlines() == [
        line for line in asked.stderr.strip().splitlines() if "is damaged" in line
    ]
    assert len(asked.stderr.strip().splitlines()) == 1


async def test_servers_run_the_thorough_check(pristine: Path, tmp_path: Path) -> None:
    damaged = _damaged(pristine, tmp_path, "corrupt")
    assert check_code_db(damaged) == []  # the cheap check cannot see inside pages ...
    settings = Settings(codes_db=damaged, database_url=f"sqlite:///{tmp_path / 's.sqlite'}")
    with pytest.raises(CodeDatabaseDamaged, match="integrity check"):
        async with open_service(settings, warm=True):  # ... the servers' start-up does
            pass


def test_incomplete_database_is_named(tmp_path: Path) -> None:
    partial = tmp_path / "partial.sqlite"
    with sqlite3.connect(partial) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    problems = check_code_db(partial, thorough=True)
    assert len(problems) == 1 and problems[0].startswith("incomplete: no table code_sets")


def test_the_real_database_is_whole(codes_db_path: Path, tmp_path: Path) -> None:
    assert check_code_db(codes_db_path, thorough=True) == []
    status = _cli(codes_db_path, tmp_path, "data", "status")
    assert status.returncode == 0, status.stderr
    assert "ICD-10-CM" in status.stdout
