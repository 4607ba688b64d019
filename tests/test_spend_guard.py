"""A user with no lookups left cannot make the bot search for free (issue 12, item 7).

The real service over the real code and state databases; the search engine is the real one,
wrapped only to count how often it runs. After a refusal, further searches by that user are
refused before the engine runs; a grant brings searching back at once, and a search without
hits stays free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_code_data
from bot.codes.search import SearchEngine
from bot.config import Settings
from bot.model import CodeRef, ReplyKind, Request, SearchHit, UserRef
from bot.service import LookupService
from bot.state import open_accounts

# the engine's worst case: ten typo-heavy words, every one corrected by fuzzy matching
EXPENSIVE = [
    "tuuor by pnq stomawh chayr relatpd rexlux bibateral subcutaneons trqch",
    "locer hcp fibromatosjs d puu eximination uhi covpd gi bwain",
    "stktus dka iritten upner deficienyy bonl cancer ventricglar geneoal mepis",
]
GUEST = UserRef("console", "team-a", "guest-1", "Guest")
ADMIN = UserRef("console", "team-a", "boss", "Boss")


@dataclasses.dataclass
class CountingSearch:
    """The real engine; counts the searches it was asked to run."""

    inner: SearchEngine
    searches: int = 0

    def search(self, query: str, **options: Any) -> Sequence[SearchHit]:
        self.searches += 1
        return self.inner.search(query, **options)

    def autocomplete(self, prefix: str, limit: int = 25) -> list[CodeRef]:
        return self.inner.autocomplete(prefix, limit)


@pytest.fixture
async def service(
    codes_db_path: Path, tmp_path: Path
) -> AsyncIterator[tuple[LookupService, CountingSearch]]:
    settings = Settings(codes_db=codes_db_path, database_url=f"sqlite:///{tmp_path / 's.sqlite'}")
    catalog, engine = open_code_data(settings)
    counting = CountingSearch(engine)
    accounts = await open_accounts(settings)
    service = LookupService(catalog, counting, accounts)  # type: ignore[arg-type]
    try:
        yield service, counting
    finally:
        await service.close()


async def ask(service: LookupService, user: UserRef, text: str, *, admin: bool = False) -> Any:
    return await service.handle(Request(user=user, text=text, is_admin=admin))


async def test_refused_users_are_refused_before_searching(
    service: tuple[LookupService, CountingSearch],
) -> None:
    svc, engine = service
    assert (await ask(svc, GUEST, "E11.9")).kind is ReplyKind.CARDS  # the guest's one lookup
    first = await ask(svc, GUEST, EXPENSIVE[0])
    assert first.kind is ReplyKind.EXHAUSTED
    ran = engine.searches
    for _ in range(5):
        for query in EXPENSIVE:
            refused = await ask(svc, GUEST, query)
            assert refused.kind is ReplyKind.EXHAUSTED and not refused.items
    assert engine.searches == ran  # fifteen refusals, no search work
    # another user of the same team is not affected
    other = UserRef("console", "team-a", "guest-2", "Other")
    assert (await ask(svc, other, "knee brace")).kind is ReplyKind.SEARCH
    assert engine.searches == ran + 1


async def test_a_grant_brings_searching_back_and_empty_searches_stay_free(
    service: tuple[LookupService, CountingSearch],
) -> None:
    svc, engine = service
    await ask(svc, GUEST, "E11.9")
    assert (await ask(svc, GUEST, "knee brace")).kind is ReplyKind.EXHAUSTED
    granted = await ask(svc, ADMIN, "admin grant guest-1 2", admin=True)
    assert granted.title == "Granted", granted
    before = engine.searches
    empty = await ask(svc, GUEST, "qqqzzxv")  # charged first, nothing found: refunded
    assert empty.kind is ReplyKind.SEARCH and not empty.items
    found = await ask(svc, GUEST, "knee brace")
    assert found.kind is ReplyKind.SEARCH and found.items
    assert "1 code lookup remaining" in found.notice  # 2 granted, the empty search was free
    assert engine.searches == before + 2
