"""State: quotas, the charge ledger, plans, grants, team history and notes, request claims.

Layout (policy once, SQL per backend):

    policy.py          constants, timestamps, notice/refusal texts, note cleaning, value types
    plans.py           the plan table from `[quota]`
    store.py           `StateStore`: the small protocol each backend implements
    ledger.py          `QuotaLedger`: who pays, outcomes and texts, over any store
    accounts.py        `StateAccounts`: the `bot.ports.Accounts` port (commands, history)
    admin.py           `codebot admin export/purge`, through the store protocol
    migrations.py      how schema migrations work (read its docstring before adding one)
    sqlite.py          `SqliteStore` (+ sqlite_db.py connection, sqlite_schema.py migrations)
    postgres.py        `PostgresStore` (+ postgres_schema.py migrations)

The backend is chosen by the scheme of `CODEBOT_DATABASE_URL` (`open_store`):
`sqlite:///path` (the embedded default) or `postgresql://…` / `postgres://…`.

Migrations: each backend's schema module holds `MIGRATIONS`, a tuple of
`Migration(version, name, sql)` numbered 1, 2, 3 …; applied versions are recorded in the
`schema_migrations` table and the missing ones are applied once, in order, under a lock,
when a process opens the store. To add a table, append the next number to BOTH
`sqlite_schema.py` and `postgres_schema.py`, then give `StateStore` the methods that use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config import ConfigError, Settings

if TYPE_CHECKING:
    from bot.ports import Accounts
    from bot.state.accounts import Resolve
    from bot.state.policy import Clock
    from bot.state.store import StateStore

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")
URL_HELP = (
    "CODEBOT_DATABASE_URL must look like sqlite:///path/to/state.sqlite "
    "or postgresql://user@host/dbname"
)


def backend_of(database_url: str) -> str:
    """ "sqlite" or "postgres" for a state database URL; ConfigError for anything else."""
    if database_url.startswith(SQLITE_PREFIX) and len(database_url) > len(SQLITE_PREFIX):
        return "sqlite"
    if database_url.startswith(POSTGRES_PREFIXES):
        return "postgres"
    raise ConfigError(URL_HELP)


class StateDatabaseUnavailable(RuntimeError):
    """The state database cannot be opened; the message names it (never its password)."""


async def open_store(settings: Settings) -> StateStore:
    """Open (create, migrate) the state store `settings.database_url` names.

    Raises ConfigError for a malformed URL and StateDatabaseUnavailable when the database
    cannot be reached or opened.
    """
    if backend_of(settings.database_url) == "sqlite":
        import sqlite3

        from bot.state.sqlite import SqliteStore

        try:
            return await SqliteStore.open(settings.state_path)
        except (OSError, sqlite3.Error) as error:
            raise StateDatabaseUnavailable(
                f"state database {settings.state_path} cannot be opened: {error}"
            ) from None
    import asyncpg

    from bot.state.postgres import PostgresStore, public_url

    try:
        return await PostgresStore.open(settings)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise StateDatabaseUnavailable(
            f"state database {public_url(settings.database_url)} cannot be reached: "
            f"{type(error).__name__}"
        ) from None


async def open_accounts(
    settings: Settings, *, now: Clock | None = None, resolve: Resolve | None = None
) -> Accounts:
    """The `Accounts` port over the configured state store."""
    from bot.state.accounts import StateAccounts
    from bot.state.policy import utc_now

    return await StateAccounts.open(settings, now=now or utc_now, resolve=resolve)
