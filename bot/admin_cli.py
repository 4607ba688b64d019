"""Data requests: `codebot admin export --team T` and `codebot admin purge --user U`.

`export_team` returns every row the state database holds about one tenant (Slack workspace
/ Discord server) as JSON-ready data: its plan, members, usage buckets, charge ledger,
grants, lookup history and notes. `purge_user` deletes one user's data everywhere: their
account, own usage and charges, grants to them, lookup history and the notes they wrote.
Charges they made against a team pool are kept for the team's counts but anonymised, so
the team ledger still adds up.

Both take an optional platform; a team may also be given as `platform:tenant` and a user
as `platform:tenant:user` to narrow the match to one account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.quota import TEAM_POOL, timestamp, utc_now
from bot.store import Database

DELETED_USER = "(deleted)"

# every table has platform and tenant columns; all columns are exported
_TEAM_TABLES = ("teams", "users", "usage", "charges", "grants", "lookups", "notes")


async def export_team(settings: Settings, team: str, platform: str | None = None) -> dict[str, Any]:
    """All state of tenant `team` (optionally on one platform) as a JSON-ready dict."""
    if platform is None and team.count(":") == 1:
        platform, team = team.split(":", 1)
    database = await _open(settings.state_path)
    try:
        data: dict[str, Any] = {
            "tenant": team,
            "platform": platform,
            "exported_at": timestamp(utc_now()),
        }
        for table in _TEAM_TABLES:
            sql = f"SELECT * FROM {table} WHERE tenant = ?"
            params: tuple[str, ...] = (team,)
            if platform is not None:
                sql += " AND platform = ?"
                params += (platform,)
            if _has_rowid(table):
                sql += " ORDER BY rowid"
            rows = await database.fetchall(sql, params)
            data[table] = [dict(row) for row in rows]
        return data
    finally:
        await database.close()


async def purge_user(settings: Settings, user: str, platform: str | None = None) -> int:
    """Delete user `user`'s data everywhere; return the number of rows deleted or anonymised."""
    tenant: str | None = None
    if platform is None and user.count(":") == 2:
        platform, tenant, user = user.split(":", 2)
    if not user:
        return 0
    scope = ""
    scope_params: tuple[str, ...] = ()
    if platform is not None:
        scope += " AND platform = ?"
        scope_params += (platform,)
    if tenant is not None:
        scope += " AND tenant = ?"
        scope_params += (tenant,)
    params = (user, *scope_params)
    database = await _open(settings.state_path)
    changed = 0
    try:
        async with database.transaction() as tx:
            # own-pool charges go (their trigger keeps the counters right, and the usage
            # rows go next); team-pool charges stay for the team's totals, without the user
            changed += await tx.execute(
                f"DELETE FROM charges WHERE user_id = ? AND pool_user != '{TEAM_POOL}'{scope}",
                params,
            )
            changed += await tx.execute(
                f"UPDATE charges SET user_id = '{DELETED_USER}' WHERE user_id = ?{scope}", params
            )
            changed += await tx.execute(f"DELETE FROM usage WHERE user_id = ?{scope}", params)
            changed += await tx.execute(f"DELETE FROM grants WHERE user_id = ?{scope}", params)
            # grants made by the user keep their amount, not the admin's id
            changed += await tx.execute(
                f"UPDATE grants SET granted_by = '{DELETED_USER}' "
                "WHERE substr(granted_by, length(granted_by) - length(?)) = ':' || ?"
                f"{scope}",
                (user, *params),
            )
            changed += await tx.execute(f"DELETE FROM lookups WHERE user_id = ?{scope}", params)
            changed += await tx.execute(f"DELETE FROM notes WHERE author_id = ?{scope}", params)
            changed += await tx.execute(f"DELETE FROM users WHERE user_id = ?{scope}", params)
    finally:
        await database.close()
    return changed


async def _open(path: Path) -> Database:
    # opening also creates/migrates, so export/purge work on a fresh install too
    return await Database.open(path)


def _has_rowid(table: str) -> bool:
    return table in ("grants", "lookups")
