"""The SQLite state database connection (aiosqlite): set-up, migrations, retries, batching.

`bot.state.sqlite.SqliteStore` holds the SQL; this module is the connection it runs on:
one SQLite file shared by every codebot process on one host.

Connection rules, chosen for many writers in several processes:
- WAL journal, so readers never block the writer and commits need no fsync of the main
  file; `synchronous=NORMAL` (a power cut may lose the last commits, never corrupt);
  checkpoints every ~40 MB of WAL rather than 4 MB (fewer fsyncs);
- autocommit (`isolation_level=None`): each hot-path write is ONE statement, which SQLite
  runs atomically under the database write lock, so there is nothing to BEGIN/COMMIT;
- `busy_timeout` lets SQLite wait for another process's write lock, and `Database` retries
  the rare "database is locked"/"busy" errors SQLite reports without waiting (WAL recovery,
  snapshot conflicts) with jittered backoff;
- one connection per process, guarded by an asyncio lock, so an explicit transaction of
  one coroutine never swallows another coroutine's statement;
- hot paths submit plain sqlite3 "jobs" (`Database.run`) that run on the connection's
  thread in one hop; jobs that arrive while a hop is in flight share the next hop
  (each statement still commits on its own), so under load a thread handoff and an event
  loop wake-up are paid per batch of requests, not per statement.

Migrations (`bot.state.migrations`) are applied in order inside `BEGIN IMMEDIATE` and
tracked in the `schema_migrations` table; several processes starting at once apply each
migration once. A file from before that table (v1 tracked by `PRAGMA user_version`) is
adopted: its versions are recorded as applied.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from bot.state.migrations import Migration, pending

logger = logging.getLogger(__name__)

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]

BUSY_TIMEOUT_MS = 10_000
# Checkpoint the WAL every ~40 MB instead of SQLite's ~4 MB: each checkpoint costs fsyncs,
# and hot pages (usage counters, index tails) are copied once per checkpoint, not per
# commit. Measured: charge + record per request went from ~2,000/s to ~3,400/s.
WAL_AUTOCHECKPOINT_PAGES = 10_000
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024  # truncate the WAL back to this after a checkpoint
MAX_RETRIES = 12
RECOVERY_CHECKPOINT_PAGES = 1_000  # SQLite's default: keep the WAL small once space ran out

_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)
_APPLIED_SQL = "SELECT version FROM schema_migrations"
_RECORD_SQL = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _problem_of(outcomes: Sequence[tuple[bool, Any]]) -> str:
    for ok, value in outcomes:
        if not ok and isinstance(value, BaseException):
            problem = storage_problem(value)
            if problem:
                return problem
    return "storage error"


def is_storage_error(error: object) -> bool:
    """True for errors of the storage itself: disk full, read-only, I/O, cannot open."""
    if not isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError):
        return False
    return storage_problem(error) is not None


def storage_problem(error: BaseException) -> str | None:
    """What is wrong with the state file, in words, or None for any other error."""
    if not isinstance(error, sqlite3.Error):
        return None
    message = str(error).lower()
    if "full" in message:
        return "is full (no space left on its disk)"
    if "readonly" in message or "read-only" in message:
        return "is read-only"
    if "unable to open" in message:
        return "cannot be opened"
    if "disk i/o error" in message:
        return "has a disk I/O error"
    return None


def is_locked_error(error: BaseException) -> bool:
    """True for SQLite's transient lock contention errors ("database is locked", busy)."""
    if not isinstance(error, sqlite3.OperationalError):
        return False
    message = str(error).lower()
    return "locked" in message or "busy" in message


class Database:
    """One aiosqlite connection to the state file, with retries and a statement lock."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._conn = connection
        self.path = path
        self._lock = asyncio.Lock()  # held by transaction() and by each hop of run() jobs
        self._jobs: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._pump: asyncio.Future[None] | None = None
        self._direct = False  # a lone job's hop is in flight (see `run`)
        self._recovering = False  # a write failed for lack of space (see `_hop`)

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        migrations: Sequence[Migration] = (),
    ) -> Database:
        """Open (creating parent directories and the file) and migrate the database."""
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(str(path), isolation_level=None)
        database = cls(connection, path)
        try:
            connection.row_factory = sqlite3.Row
            # busy_timeout first: switching to WAL itself needs a lock other processes hold
            await connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await database._retry(lambda: connection.execute("PRAGMA journal_mode = WAL"))
            await connection.execute("PRAGMA synchronous = NORMAL")
            await connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            await connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            await connection.execute("PRAGMA foreign_keys = ON")
            await database._migrate(migrations)
        except BaseException:
            await connection.close()
            raise
        return database

    async def _migrate(self, migrations: Sequence[Migration]) -> None:
        if not migrations or not pending(migrations, await self._applied_versions()):
            return
        async with self.transaction() as tx:
            await tx.execute(_MIGRATIONS_TABLE)
            # re-read under the write lock: another process may have migrated meanwhile
            applied = {int(row[0]) for row in await tx.fetchall(_APPLIED_SQL)}
            legacy = int((await tx.fetchall("PRAGMA user_version"))[0][0])
            for old in migrations[: legacy if not applied else 0]:
                await tx.execute(_RECORD_SQL, (old.version, old.name, _now_text()))
                applied.add(old.version)
            for migration in pending(migrations, applied):
                for statement in _split_script(migration.sql):
                    await tx.execute(statement)
                await tx.execute(_RECORD_SQL, (migration.version, migration.name, _now_text()))
                logger.info(
                    "state database %s: migration %d (%s) applied",
                    self.path,
                    migration.version,
                    migration.name,
                )

    async def _applied_versions(self) -> set[int]:
        exists = await self._conn.execute_fetchall(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        )
        if not list(exists):
            return set()
        return {int(row[0]) for row in await self._conn.execute_fetchall(_APPLIED_SQL)}

    async def _retry(self, operation: Callable[[], Awaitable[T]]) -> T:
        delay = 0.002
        for attempt in range(MAX_RETRIES + 1):
            try:
                return await operation()
            except sqlite3.OperationalError as error:
                if not is_locked_error(error) or attempt == MAX_RETRIES:
                    raise
                logger.debug("state database busy (attempt %d); retrying", attempt + 1)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.25)
        raise AssertionError("unreachable")

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job(connection)` on the connection's thread, as one hop; return its result.

        The job is plain synchronous sqlite3 code (autocommit: each statement it runs is
        atomic on its own). Jobs submitted while a hop is in flight, or while a
        `transaction()` holds the connection, are queued and then run back to back in ONE
        hop, in submission order: under concurrency many requests share a single thread
        handoff and a single wake-up of the event loop. A job's transient lock errors are
        retried (with backoff, on the worker thread) before they are reported to its caller;
        one job's failure never affects the others in its hop.
        """
        if self._pump is None and not self._direct and not self._lock.locked():
            # idle: a hop of its own, awaited by the caller (no pump task, fewer loop turns)
            self._direct = True
            try:
                async with self._lock:
                    outcomes = await self._on_worker_thread(partial(self._hop, [job]))
            finally:
                self._direct = False
                if self._jobs and self._pump is None:  # queued meanwhile: one hop for all
                    self._pump = asyncio.ensure_future(self._pump_jobs())
            ok, value = outcomes[0]
            if ok:
                return cast(T, value)
            raise value
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.append((job, future))
        if self._pump is None and not self._direct:
            self._pump = asyncio.ensure_future(self._pump_jobs())
        return await future

    async def _pump_jobs(self) -> None:
        batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        try:
            while self._jobs:
                async with self._lock:  # never inside another coroutine's transaction
                    batch, self._jobs = self._jobs, []
                    outcomes = await self._on_worker_thread(
                        partial(self._hop, [job for job, _ in batch])
                    )
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():  # the caller was cancelled; the job still ran
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
                batch = []
        except BaseException as error:  # connection closed, loop shutting down, cancelled
            failure = error if isinstance(error, Exception) else ConnectionError(str(error))
            for _, future in batch + self._jobs:
                if not future.done():
                    future.set_exception(failure)
            self._jobs = []
            if not isinstance(error, Exception):
                raise  # cancellation: let it propagate (the failure went to every caller)
        finally:
            self._pump = None

    def _hop(
        self, jobs: Sequence[Callable[[sqlite3.Connection], Any]], connection: sqlite3.Connection
    ) -> list[tuple[bool, Any]]:
        """On the worker thread: recover from a full disk first if needed, then the jobs.

        After "database or disk is full" (or an I/O error) SQLite leaves the WAL as big as
        it got, and with a large autocheckpoint interval it is never folded back, so even
        when space returns the next writes fill the disk again. So after such an error
        every hop first tries `wal_checkpoint(TRUNCATE)` (it fails fast while the disk is
        still full) and, once it succeeds, the checkpoint interval drops to SQLite's
        default: the process recovers by itself as soon as there is room.
        """
        if self._recovering:
            try:
                busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if not busy:
                    connection.execute(f"PRAGMA wal_autocheckpoint = {RECOVERY_CHECKPOINT_PAGES}")
                    self._recovering = False
                    logger.warning("%s is writable again (WAL checkpointed)", self.path)
            except sqlite3.Error:
                pass  # still no room: the next hop tries again (a failing checkpoint is cheap)
        outcomes = _run_jobs(jobs, connection)
        if any(not ok and is_storage_error(value) for ok, value in outcomes):
            if not self._recovering:
                logger.error("%s: writes fail (%s)", self.path, _problem_of(outcomes))
            self._recovering = True
        return outcomes

    async def _on_worker_thread(self, function: Callable[[sqlite3.Connection], T]) -> T:
        # aiosqlite has no public "run this callable on your thread" API; `_execute` (queue a
        # callable, await its result) and `_conn` (the sqlite3 connection) are its internals,
        # used ONLY here. Pinned by the aiosqlite version in pyproject; tests cover it.
        raw = self._conn._conn
        return await self._conn._execute(function, raw)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Run one statement (read, or a write with RETURNING) and return all its rows."""
        return await self.run(lambda connection: connection.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Run one statement and return its first row, or None."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement (atomic on its own); return the number of changed rows."""
        return await self.run(lambda connection: int(connection.execute(sql, params).rowcount))

    async def _execute(self, sql: str, params: Params) -> int:
        async with self._conn.execute(sql, params) as cursor:
            return int(cursor.rowcount)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """`BEGIN IMMEDIATE` … `COMMIT` (rollback on error) with the statement lock held."""
        async with self._lock:
            await self._retry(lambda: self._execute("BEGIN IMMEDIATE", ()))
            try:
                yield Transaction(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            # COMMIT may have to wait for readers' locks: retry it, the transaction stays open
            await self._retry(lambda: self._execute("COMMIT", ()))

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self._conn.close()


class Transaction:
    """Statements inside `Database.transaction()`; no locking or retries of its own."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._conn = connection

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of changed rows."""
        async with self._conn.execute(sql, params) as cursor:
            return int(cursor.rowcount)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Run one statement and return all rows."""
        rows = await self._conn.execute_fetchall(sql, params)
        return list(rows)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each parameter set."""
        await self._conn.executemany(sql, rows)


def _run_jobs(
    jobs: Sequence[Callable[[sqlite3.Connection], Any]], connection: sqlite3.Connection
) -> list[tuple[bool, Any]]:
    """On the worker thread: run the jobs of one hop; (ok, result or error) for each.

    Several jobs share one write transaction (group commit): `BEGIN IMMEDIATE` takes the
    database write lock once, the jobs run in order (each statement still atomic on its
    own: a failing statement is undone by itself and the others stand), and ONE `COMMIT`
    writes them all to the WAL. Results are handed out only after the COMMIT, so nobody
    is ever told about a charge that a crash could still lose. If the transaction as a
    whole fails (BEGIN, COMMIT, or an error that makes SQLite roll it back), every job of
    the hop gets the error and none of their writes happened.
    """
    if len(jobs) == 1 or connection.in_transaction:
        return (
            [_run_job(jobs[0], connection, own_transaction=False)]
            if len(jobs) == 1
            else [_run_job(job, connection, own_transaction=False) for job in jobs]
        )
    try:
        _retry_sync(lambda: connection.execute("BEGIN IMMEDIATE"))
    except Exception as error:
        return [(False, error)] * len(jobs)
    outcomes = [_run_job(job, connection, own_transaction=True) for job in jobs]
    failure: BaseException | None = None
    if not connection.in_transaction:  # an error made SQLite roll the whole batch back
        failure = next((value for ok, value in outcomes if not ok), None) or (
            sqlite3.OperationalError("the batch transaction was rolled back")
        )
    else:
        try:
            _retry_sync(lambda: connection.execute("COMMIT"))
        except Exception as error:
            failure = error
            if connection.in_transaction:
                connection.rollback()
    if failure is not None:
        return [(False, failure)] * len(jobs)
    return outcomes


def _run_job(
    job: Callable[[sqlite3.Connection], Any],
    connection: sqlite3.Connection,
    *,
    own_transaction: bool,
) -> tuple[bool, Any]:
    try:
        return True, _retry_sync(lambda: job(connection))
    except Exception as error:
        if connection.in_transaction and not own_transaction:  # a job never leaves one open
            connection.rollback()
        return False, error


def _retry_sync(operation: Callable[[], T]) -> T:
    """`Database._retry` for the worker thread: transient lock errors, jittered backoff."""
    delay = 0.002
    for attempt in range(MAX_RETRIES + 1):
        try:
            return operation()
        except sqlite3.OperationalError as error:
            if not is_locked_error(error) or attempt == MAX_RETRIES:
                raise
            logger.debug("state database busy (attempt %d); retrying", attempt + 1)
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.25)
    raise AssertionError("unreachable")


def _split_script(script: str) -> list[str]:
    """Split a migration into statements; `sqlite3.complete_statement` keeps triggers whole."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        if not current and (not line.strip() or line.strip().startswith("--")):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
