"""Codes held without a title (April 2026 PCS codes whose table row no file holds) carry a
stand-in title; the search index must not treat its words as the code's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.codes.search import SearchEngine
from bot.codes.sources.icd10pcs_history import UNTITLED


def test_stand_in_titles_are_not_searchable_words(codes_db_path: Path) -> None:
    conn = sqlite3.connect(f"file:{codes_db_path}?mode=ro", uri=True)
    untitled = {
        code
        for (code,) in conn.execute("SELECT code FROM codes WHERE title LIKE ?", (f"%{UNTITLED}",))
    }
    conn.close()
    assert untitled, "the FY2027 release holds April 2026 codes without a title"
    engine = SearchEngine.open(codes_db_path)
    try:
        for query in (UNTITLED, "abn not on file", "files held"):
            found = {hit.code for hit in engine.search(query, limit=50)}
            assert not found & untitled, query
        # The code itself still finds it.
        some = sorted(untitled)[0]
        assert some in {ref.code for ref in engine.autocomplete(some)}
    finally:
        engine.close()
