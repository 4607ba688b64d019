"""Assembly: build the real LookupService from Settings (catalog, search index, accounts)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.clock import clock_from_settings
from bot.codes.catalog import CodeCatalog
from bot.codes.integrity import check_code_db
from bot.codes.integrity import describe as describe_damage
from bot.codes.knowledge import KnowledgeBase
from bot.codes.search import SearchEngine, SearchIndexError
from bot.config import Settings
from bot.service import LookupService
from bot.state import open_accounts

# Fewer, larger young-generation collections: per-request garbage is short-lived.
SERVER_GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc_for_serving() -> tuple[int, ...]:
    """Long-lived servers: move everything loaded so far out of the garbage collector's
    view, so full collections stay short and do not show up as latency spikes, and collect
    the young generation less often. Returns the thresholds it replaced."""
    gc.collect()
    gc.freeze()
    previous = gc.get_threshold()
    gc.set_threshold(*SERVER_GC_THRESHOLDS)
    return previous


class CodeDatabaseMissing(RuntimeError):
    """The code database has not been built yet."""


class CodeDatabaseDamaged(CodeDatabaseMissing):
    """The code database is truncated or corrupt (handled like a missing one: rebuild)."""


def open_code_data(
    settings: Settings, *, thorough: bool = False
) -> tuple[CodeCatalog, SearchEngine]:
    """Open the built code database for lookup and search (read-only).

    Checks it first (bot/codes/integrity.py): cheaply always, page by page when `thorough`
    (servers at start-up). Raises CodeDatabaseMissing / CodeDatabaseDamaged with one line.
    """
    if not settings.codes_db.is_file():
        raise CodeDatabaseMissing(
            f"No code database at {settings.codes_db}. Build it with `codebot data build`."
        )
    problems = check_code_db(settings.codes_db, thorough=thorough)
    if problems:
        raise CodeDatabaseDamaged(describe_damage(settings.codes_db, problems))
    try:
        search = SearchEngine.open(settings.codes_db)
    except SearchIndexError:
        raise CodeDatabaseMissing(
            f"The code database at {settings.codes_db} has no current search index. "
            "Rebuild it with `codebot data build`."
        ) from None
    return CodeCatalog.open(settings.codes_db), search


@asynccontextmanager
async def open_service(settings: Settings, *, warm: bool = False) -> AsyncIterator[LookupService]:
    """The real service with its state database; closes everything on exit.

    `warm` preloads the search vocabulary (servers: the first user should not wait for it).
    """
    catalog, search = open_code_data(settings, thorough=warm)
    if warm:
        search.warm_up()

    def resolve(typed: str) -> tuple[str, str] | None:
        """Notes are keyed by the code's set and display form, so E119 and E11.9 agree."""
        cards = catalog.lookup(typed)
        return (cards[0].system.value, cards[0].code) if cards else None

    accounts = await open_accounts(settings, resolve=resolve)
    knowledge = KnowledgeBase.open(settings.codes_db)
    if warm:
        knowledge.warm_up()
    service = LookupService(
        catalog,
        search,
        accounts,
        clock=clock_from_settings(settings.today),
        knowledge=knowledge,
    )
    # a process killed between charging and answering left charges nobody was shown
    await service.refund_undelivered()
    if warm:
        tune_gc_for_serving()
    try:
        yield service
    finally:
        await service.close()
        knowledge.close()
