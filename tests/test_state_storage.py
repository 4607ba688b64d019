"""The state database full or read-only (issue 12 item 9), on a real small filesystem.

A tmpfs of a few MB holds the SQLite state file (these tests mount one: they run as root,
like CI). When it fills up, a paid lookup gets one clear line naming the state database,
the log gets one line (no traceback), `help` still answers, and once space returns the
same process recovers by itself: the WAL is checkpointed and every request succeeds
again. A read-only state database behaves the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.app import open_service
from bot.config import Settings
from bot.model import ReplyKind, Request, UserRef
from bot.service import LookupService

ALICE = UserRef("slack", "T1", "U1", "alice")
SIZE = "16m"


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 16 MB tmpfs, unmounted afterwards."""
    mount_point = Path(tempfile.mkdtemp(prefix="codebot-disk-", dir="/tmp"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        os.rmdir(mount_point)


@pytest.fixture
async def service(small_disk: Path, codes_db_path: Path) -> AsyncIterator[LookupService]:
    settings = Settings(
        codes_db=codes_db_path,
        database_url=f"sqlite:///{small_disk / 'state.sqlite'}",
        quota={"guest_plan": "unlimited"},
    )
    async with open_service(settings) as opened:
        yield opened


_ids = iter(range(10**9))


async def lookups(service: LookupService, count: int) -> list[ReplyKind]:
    kinds = []
    for _ in range(count):
        request = Request(ALICE, "/code E11.9", request_id=f"r{next(_ids)}")
        reply = await service.handle(request)
        await service.delivered(request)
        kinds.append(reply.kind)
    return kinds


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"x" * 4096)
    return filler


async def test_full_disk_clear_error_help_works_then_recovers(
    service: LookupService, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert set(await lookups(service, 50)) == {ReplyKind.CARDS}
    filler = fill(small_disk)
    with caplog.at_level(logging.INFO):
        refused = await service.handle(Request(ALICE, "/code E11.9", request_id="full-1"))
    assert refused.kind is ReplyKind.ERROR
    assert f"state database {small_disk / 'state.sqlite'} is full" in refused.text
    assert "\n" not in refused.text and "`/code help` still works" in refused.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "bot.service"]
    assert errors and all(r.exc_info is None for r in errors)  # one line, no traceback
    assert "is full" in errors[-1].getMessage()
    helped = await service.handle(Request(ALICE, "/code help", request_id="full-help"))
    assert helped.kind is ReplyKind.INFO and helped.title == "codebot help"
    assert set(await lookups(service, 20)) == {ReplyKind.ERROR}

    filler.unlink()  # space returns
    assert set(await lookups(service, 300)) == {ReplyKind.CARDS}
    wal = small_disk / "state.sqlite-wal"
    assert wal.stat().st_size < 8 * 1024 * 1024  # checkpointed, not left to fill the disk


async def test_read_only_state_database_clear_error_then_recovers(service: LookupService) -> None:
    """Read-only through SQLite's own `query_only` switch: the kernel refuses to remount a
    filesystem read-only while the state file is open for writing, and SQLite then reports
    the same SQLITE_READONLY error a read-only file gives."""
    database = service._accounts.store.db  # type: ignore[attr-defined]
    assert set(await lookups(service, 5)) == {ReplyKind.CARDS}
    await database.run(lambda connection: connection.execute("PRAGMA query_only = ON"))
    refused = await service.handle(Request(ALICE, "/code E11.9", request_id="ro-1"))
    assert refused.kind is ReplyKind.ERROR
    assert "state database" in refused.text and "is read-only" in refused.text
    helped = await service.handle(Request(ALICE, "/code help", request_id="ro-help"))
    assert helped.kind is ReplyKind.INFO and helped.title == "codebot help"
    await database.run(lambda connection: connection.execute("PRAGMA query_only = OFF"))
    assert set(await lookups(service, 20)) == {ReplyKind.CARDS}
