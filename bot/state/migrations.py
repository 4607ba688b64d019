"""Numbered schema migrations, the same style for every backend.

Each backend keeps its own tuple `MIGRATIONS` of `Migration(version, name, sql)` in its
schema module (`bot/state/sqlite_schema.py`, `bot/state/postgres_schema.py`), numbered
1, 2, 3, … without gaps. A database records every applied migration in its
`schema_migrations` table (version, name, applied_at); at open, each store applies the
missing ones in order inside ONE transaction under the backend's lock (SQLite: `BEGIN
IMMEDIATE`; PostgreSQL: a transaction-level advisory lock), re-reading the table under
that lock, so N processes starting together apply each migration exactly once.

To change the schema, append `Migration(N + 1, "what_it_does", sql)` to BOTH tuples (the
same number and name, hand-written SQL per backend). Never edit a released migration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Migration(NamedTuple):
    """One schema step: applied once, in version order, never edited after release."""

    version: int
    name: str
    sql: str


def pending(migrations: Sequence[Migration], applied: set[int]) -> list[Migration]:
    """The migrations not yet applied, in order; raises ValueError for a numbering gap."""
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(
                f"migration {migration.name} is numbered {migration.version}, expected {expected}"
            )
    return [migration for migration in migrations if migration.version not in applied]
