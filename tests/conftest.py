"""Shared fixtures: one real code database per test session, and a catalog over it.

`CODEBOT_CODES_DB` (set by `make test`) points at an already-built database; without it
the session builds one into a temporary directory (a few seconds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.codes.catalog import CodeCatalog
from tests.postgres_server import PostgresServer


@pytest.fixture(scope="session")
def codes_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a complete code database (built once per session unless given by env)."""
    given = os.environ.get("CODEBOT_CODES_DB")
    if given and Path(given).is_file():
        return Path(given)
    from bot.codes.build import build_code_db

    output = tmp_path_factory.mktemp("codes") / "codes.sqlite"
    build_code_db(output, progress=lambda _line: None, search_index=True)
    return output


@pytest.fixture(scope="session")
def catalog(codes_db_path: Path) -> Iterator[CodeCatalog]:
    """A CodeCatalog over the session's code database."""
    opened = CodeCatalog.open(codes_db_path)
    yield opened
    opened.close()


# ---------------------------------------------------------------------- state backends

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster per session (tests/postgres_server.py).

    When it cannot start, every PostgreSQL test FAILS with the reason (never skips):
    `make test` and `.ci/run` install the server first.
    """
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each state test runs once per backend."""
    return str(request.param)


@pytest.fixture
async def state_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty state database of the test's backend, as a CODEBOT_DATABASE_URL."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return await server.create_database()
