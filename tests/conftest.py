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
