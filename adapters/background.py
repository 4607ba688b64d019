"""Background work shared by the HTTP adapters: tasks kept alive until done, one HTTP session.

asyncio keeps only weak references to tasks, so a fire-and-forget answer needs a strong
reference until it finishes; the aiohttp client session is created on first use (inside the
running loop) and recreated if something closed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import aiohttp


class Background:
    """A set of background tasks and a lazily created `aiohttp.ClientSession`."""

    def __init__(self, http_timeout: float) -> None:
        self.http_timeout = http_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run `coroutine` in the background, holding a reference until it is done."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def session(self) -> aiohttp.ClientSession:
        """The shared client session (created on first use, or again after a close)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.http_timeout)
            )
        return self._session

    async def drain(self, grace: float) -> set[asyncio.Task[None]]:
        """Wait up to `grace` seconds for the tasks in flight; return those still pending."""
        if not self._tasks:
            return set()
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        return pending

    async def close_session(self) -> None:
        """Close the client session, if one is open."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
