"""The real service with its operations port (`/healthz`, `/readyz`, `/metrics`) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from adapters.ops_http import start_ops_server
from bot.app import open_service
from bot.config import Settings
from bot.service import LookupService


@asynccontextmanager
async def running_ops(
    tmp_path: Path, codes_db_path: Path
) -> AsyncIterator[tuple[LookupService, int]]:
    """(service, port): a SQLite state database under `tmp_path`; stopped and closed on exit."""
    settings = Settings(codes_db=codes_db_path, database_url=f"sqlite:///{tmp_path / 's.db'}")
    async with open_service(settings) as service:
        runner = await start_ops_server(service, 0, host="127.0.0.1")
        try:
            yield service, runner.addresses[0][1]
        finally:
            await runner.cleanup()
