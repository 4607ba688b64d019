"""Assembly: build the real LookupService from Settings (catalog, search index, accounts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.accounts import open_accounts
from bot.codes.catalog import CodeCatalog
from bot.codes.search import SearchEngine
from bot.config import Settings
from bot.service import LookupService


class CodeDatabaseMissing(RuntimeError):
    """The code database has not been built yet."""


def open_code_data(settings: Settings) -> tuple[CodeCatalog, SearchEngine]:
    """Open the built code database for lookup and search (read-only)."""
    if not settings.codes_db.is_file():
        raise CodeDatabaseMissing(
            f"No code database at {settings.codes_db}. Build it with `codebot data build`."
        )
    catalog = CodeCatalog.open(settings.codes_db)
    return catalog, SearchEngine.open(settings.codes_db)


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[LookupService]:
    """The real service with its state database; closes everything on exit."""
    catalog, search = open_code_data(settings)

    def resolve(typed: str) -> tuple[str, str] | None:
        """Notes are keyed by the code's set and display form, so E119 and E11.9 agree."""
        cards = catalog.lookup(typed)
        return (cards[0].system.value, cards[0].code) if cards else None

    accounts = await open_accounts(settings, resolve=resolve)
    service = LookupService(catalog, search, accounts)
    try:
        yield service
    finally:
        await service.close()
