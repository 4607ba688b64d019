"""Buffered lookup history: a flush writes what was pending when it began, never keeps its
caller waiting for rows that arrive meanwhile (under steady traffic that wait had no end:
Slack requests passed their ack deadline). Runs on both state backends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.config import Settings
from bot.model import Request, UserRef
from bot.ports import LookupRecord
from bot.state.accounts import FLUSH_ROWS, StateAccounts
from bot.state.store import HistoryRow

ARRIVALS_PER_WRITE = 7  # rows other requests add while each batch is being written


async def test_flush_writes_the_rows_pending_when_it_began(state_url: str) -> None:
    accounts = await StateAccounts.open(Settings(database_url=state_url))
    store = accounts.store
    written: list[int] = []
    real_insert = store.insert_lookups

    async def insert_while_traffic_arrives(rows: Sequence[HistoryRow]) -> None:
        await real_insert(rows)
        written.append(len(rows))
        # Other requests answered during this write add their rows to the buffer (during
        # the first few writes only, so that a draining flush ends and the test fails).
        for _ in range(ARRIVALS_PER_WRITE if len(written) <= 3 else 0):
            await accounts.record_lookups(_request(len(written)), [_record()])

    store.insert_lookups = insert_while_traffic_arrives  # type: ignore[method-assign]
    try:
        user = _request(0)
        for _ in range(FLUSH_ROWS - 1):
            await accounts.record_lookups(user, [_record()])
        # The row that fills a batch starts a background flush; the request does not wait.
        await accounts.record_lookups(user, [_record()])
        assert written == []
        await asyncio.gather(*accounts._flush_tasks)
        assert written == [FLUSH_ROWS]
        assert len(accounts._pending) == ARRIVALS_PER_WRITE  # for the next flush
        await accounts.flush()
        assert written == [FLUSH_ROWS, ARRIVALS_PER_WRITE]
        recent = await store.recent_lookups("slack", "T1", 1_000)
        assert len(recent) == FLUSH_ROWS + ARRIVALS_PER_WRITE
    finally:
        store.insert_lookups = real_insert  # type: ignore[method-assign]
        await accounts.close()


def _request(number: int) -> Request:
    return Request(UserRef("slack", "T1", f"U{number}"), "E11.9", request_id=f"r{number}")


def _record() -> LookupRecord:
    return LookupRecord("icd10cm", "E11.9", "SYNTHETIC TEST TITLE")
