"""Data requests: `codebot admin export --team T` and `codebot admin purge --user U`.

`export_team` returns every row the state database holds about one tenant (Slack workspace
/ Discord server) as JSON-ready data: its plan, members, usage buckets, charge ledger,
grants, lookup history and notes. `purge_user` deletes one user's data everywhere: their
account, own usage and charges, grants to them, lookup history and the notes they wrote.
Charges they made against a team pool are kept for the team's counts but anonymised, so
the team ledger still adds up. Both go through the `StateStore` protocol, so they work on
every backend.

Both take an optional platform; a team may also be given as `platform:tenant` and a user
as `platform:tenant:user` to narrow the match to one account.
"""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from bot.state import open_store
from bot.state.policy import timestamp, utc_now


async def export_team(settings: Settings, team: str, platform: str | None = None) -> dict[str, Any]:
    """All state of tenant `team` (optionally on one platform) as a JSON-ready dict."""
    if platform is None and team.count(":") == 1:
        platform, team = team.split(":", 1)
    # opening also creates/migrates, so export/purge work on a fresh install too
    store = await open_store(settings)
    try:
        tables = await store.export_team(team, platform)
    finally:
        await store.close()
    return {"tenant": team, "platform": platform, "exported_at": timestamp(utc_now()), **tables}


async def purge_user(settings: Settings, user: str, platform: str | None = None) -> int:
    """Delete user `user`'s data everywhere; return the number of rows deleted or anonymised."""
    tenant: str | None = None
    if platform is None and user.count(":") == 2:
        platform, tenant, user = user.split(":", 2)
    if not user:
        return 0
    store = await open_store(settings)
    try:
        return await store.purge_user(user, platform, tenant)
    finally:
        await store.close()
