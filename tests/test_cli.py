"""The `codebot` command as a user runs it: real subprocesses, real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]

BAD_INPUTS = [
    "",
    "x" * 10_000,
    "\x01\x02\x1b[2J",
    "🩺💉😀",
    "'; DROP TABLE codes;--",
    "<!channel> <@U123> @everyone",
]


@pytest.fixture
def run(codes_db_path: Path, tmp_path: Path) -> Run:
    env = {
        **os.environ,
        "CODEBOT_CODES_DB": str(codes_db_path),
        "CODEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}",
        "CODEBOT_CONFIG": str(tmp_path / "absent.toml"),
    }
    for secret in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DISCORD_TOKEN"):
        env.pop(secret, None)

    def invoke(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    return invoke


def test_lookup_json_five_cards(run: Run) -> None:
    result = run("lookup", "E11.9", "S72.001A", "0DTJ4ZZ", "A0425", "LT", "--json")
    assert result.returncode == 0, result.stderr
    cards = json.loads(result.stdout)
    assert [(c["system"], c["code"]) for c in cards] == [
        ("icd10cm", "E11.9"),
        ("icd10cm", "S72.001A"),
        ("icd10pcs", "0DTJ4ZZ"),
        ("hcpcs", "A0425"),
        ("hcpcs", "LT"),
    ]
    e119, s72, pcs, a0425, lt = cards
    assert e119["billable"] and e119["parents"][-1]["code"] == "E11"
    assert s72["billable"] and "initial encounter" in s72["title"]
    assert pcs["attributes"]["4 Body Part"] == "J Appendix"
    assert a0425["effective"]["added"] and a0425["status"] == "active"
    assert lt["title"].startswith("Left side")
    for card in cards:
        assert {
            "code",
            "system",
            "title",
            "short_title",
            "billable",
            "status",
            "parents",
            "children",
            "notes",
            "effective",
            "source",
        } <= card.keys()


def test_lookup_unknown_code_json_has_suggestions_and_exit_zero(run: Run) -> None:
    result = run("lookup", "e11.99", "--json")
    assert result.returncode == 0
    (item,) = json.loads(result.stdout)
    assert item["error"] and 1 <= len(item["suggestions"]) <= 5


def test_terminated_hcpcs_code_says_so(run: Run) -> None:
    result = run("lookup", "S0189")
    assert result.returncode == 0
    assert "terminated: last date of service 2025-12-31" in result.stdout


def test_search_json_and_batch(run: Run, tmp_path: Path) -> None:
    result = run("search", "knee", "brace", "--system", "hcpcs", "--limit", "3", "--json")
    assert result.returncode == 0
    payload = json.loads(result.stdout)
    assert payload["query"] == "knee brace" and len(payload["results"]) == 3
    assert all(hit["system"] == "hcpcs" for hit in payload["results"])
    batch = tmp_path / "queries.txt"
    batch.write_text("# comment\nhtn\n\npnuemonia\n", encoding="utf-8")
    lines = run("search", "--batch", str(batch), "--json").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["query"] for row in rows] == ["htn", "pnuemonia"]
    assert rows[0]["results"][0]["code"] == "I10"


def test_usage_errors_exit_non_zero(run: Run) -> None:
    assert run("search", "knee", "--limit", "0").returncode == 2
    assert run("lookup").returncode == 2
    assert run("frobnicate").returncode == 2


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_bad_input_gets_a_short_clear_answer(run: Run, text: str) -> None:
    for args in (("ask", text), ("lookup", text or " "), ("search", text)):
        result = run(*args)
        assert result.returncode == 0, (args[0], result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        assert len(result.stdout) < 4000
        assert "@everyone" not in result.stdout


def test_console_banner_turns_and_clean_exit_at_end_of_input(run: Run) -> None:
    result = run("console", "--user", "c1", stdin="help\nmodifier LT\n")
    assert result.returncode == 0, result.stderr
    assert "ICD-10-CM FY2027" in result.stdout and "ICD-10-PCS FY20" in result.stdout
    assert "HCPCS Level II 2026-01" in result.stdout
    assert "/code share E11.9" in result.stdout  # help
    assert "Left side" in result.stdout


def test_run_without_tokens_opens_the_console(run: Run) -> None:
    result = run("run", stdin="E11.9\n")
    assert result.returncode == 0, result.stderr
    assert "codebot console" in result.stdout and "Type 2 diabetes" in result.stdout


def test_data_status_prints_each_code_set(run: Run) -> None:
    result = run("data", "status")
    assert result.returncode == 0
    assert "ICD-10-CM" in result.stdout and "79,115" in result.stdout
    assert "8,623" in result.stdout


def test_missing_code_database_is_a_clear_error(run: Run, tmp_path: Path) -> None:
    env_missing = tmp_path / "nothing.sqlite"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "lookup", "E11.9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CODEBOT_CODES_DB": str(env_missing)},
    )
    assert result.returncode == 1
    assert "codebot data build" in result.stderr and "Traceback" not in result.stderr


def test_admin_export_and_purge_commands(run: Run) -> None:
    run("ask", "--user", "u9", "--team", "t9", "/code note E11.9 check A1c")
    run("ask", "--user", "u9", "--team", "t9", "/code E11.9")
    exported = run("admin", "export", "--team", "console:t9")
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert [note["text"] for note in data["notes"]] == ["check A1c"]
    purged = run("admin", "purge", "--user", "console:t9:u9")
    assert purged.returncode == 0 and "Removed" in purged.stdout
    again = json.loads(run("admin", "export", "--team", "console:t9").stdout)
    assert again["notes"] == []


def test_import_cpt_end_to_end(run: Run, codes_db_path: Path, tmp_path: Path) -> None:
    """A licensed file (synthetic here) is imported, then looked up and searched."""
    import shutil

    own_db = tmp_path / "codes.sqlite"
    shutil.copyfile(codes_db_path, own_db)
    licensed = tmp_path / "licensed.tsv"
    licensed.write_text(
        "code\tdescriptor\n"
        "70450\tSYNTHETIC TEST DESCRIPTOR ZEBRAFISH ONE\n"
        "0001U\tSYNTHETIC TEST DESCRIPTOR ZEBRAFISH TWO\n"
        "not-a-code\tSYNTHETIC TEST DESCRIPTOR REJECTED\n",
        encoding="utf-8",
    )

    def run_on_own_db(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={
                **os.environ,
                "CODEBOT_CODES_DB": str(own_db),
                "CODEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}",
            },
        )

    imported = run_on_own_db("data", "import-cpt", str(licensed))
    assert imported.returncode == 0, imported.stderr
    assert "Imported 2 CPT® codes; rejected 1 lines." in imported.stdout
    (card,) = json.loads(run_on_own_db("lookup", "70450", "--json").stdout)
    assert card["system"] == "cpt" and card["title"] == "SYNTHETIC TEST DESCRIPTOR ZEBRAFISH ONE"
    hits = json.loads(run_on_own_db("search", "zebrafish", "--system", "cpt", "--json").stdout)
    assert {hit["code"] for hit in hits["results"]} == {"70450", "0001U"}
    assert "CPT" in run_on_own_db("data", "status").stdout
    # the shared database used by the other tests was not touched
    assert json.loads(run("lookup", "70450", "--json").stdout)[0]["section"] == "Radiology"
