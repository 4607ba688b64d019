"""The container files, read as text (no Docker engine runs here: the image itself is not
built by the tests), and the HEALTHCHECK program against a real operations port."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.ops_server import running_ops

ROOT = Path(__file__).resolve().parent.parent


def dockerfile_lines() -> list[str]:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()


def test_state_dir_is_chowned_before_it_becomes_a_volume() -> None:
    """The legacy builder drops changes to a VOLUME path made after the VOLUME line."""
    lines = [line.strip() for line in dockerfile_lines() if not line.strip().startswith("#")]
    volume = next(i for i, line in enumerate(lines) if line.startswith("VOLUME"))
    chown = next(
        i for i, line in enumerate(lines) if "chown" in line and "/var/lib/codebot" in line
    )
    assert chown < volume
    assert not any("/var/lib/codebot" in line for line in lines[volume + 1 :] if "RUN" in line)


def test_image_installs_for_real_builds_the_code_db_and_checks_health() -> None:
    text = "\n".join(line for line in dockerfile_lines() if not line.strip().startswith("#"))
    assert "pip install --no-cache-dir ." in text and " -e " not in text
    assert "data build --output /opt/codes/codes.sqlite" in text
    assert "HEALTHCHECK" in text and "adapters.healthcheck" in text
    assert "USER codebot" in text


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", "data/build", "tests"} <= ignored


async def test_healthcheck_program_exits_0_when_alive_and_1_when_not(
    tmp_path: Path, codes_db_path: Path
) -> None:
    async with running_ops(tmp_path, codes_db_path) as (_service, port):
        alive = await _healthcheck(str(port))
    assert alive == 0
    assert await _healthcheck(str(port)) == 1  # nothing listens any more


async def _healthcheck(port: str) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.healthcheck",
        cwd=ROOT,
        env={**os.environ, "CODEBOT_HEALTH_PORT": port},
        stdout=subprocess.DEVNULL,
    )
    return await process.wait()
