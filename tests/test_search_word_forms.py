"""Body-part word forms ("renal" for "kidney") and the side/level a code does not have:
checked on the real code database, the titles read from it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.codes.search import SearchEngine
from bot.codes.word_forms import WORD_FORMS, other_forms


@pytest.fixture(scope="module")
def engine(codes_db_path: Path) -> SearchEngine:
    return SearchEngine.open(codes_db_path)


def _title(codes_db_path: Path, code: str) -> str:
    conn = sqlite3.connect(f"file:{codes_db_path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT title FROM codes WHERE code = ?", (code,)).fetchone()
    finally:
        conn.close()
    assert row is not None, code
    return str(row[0]).lower()


def test_forms_go_both_ways() -> None:
    assert "renal" in other_forms("kidney") and "kidney" in other_forms("renal")
    assert all(word in other_forms(form) for word, forms in WORD_FORMS.items() for form in forms)
    assert other_forms("cervical") == ()  # neck or cervix: ambiguous, left out


def test_the_adjective_finds_the_title_that_uses_the_noun(
    engine: SearchEngine, codes_db_path: Path
) -> None:
    title = _title(codes_db_path, "N17.9")
    assert "kidney" in title and "renal" not in title and "unspecified" in title
    assert engine.search("acute renal failure")[0].code == "N17.9"
    ovarian = _title(codes_db_path, "N83.209")
    assert "ovarian" in ovarian and "ovary" not in ovarian
    assert "N83.209" in [h.code for h in engine.search("cyst of ovary", limit=10)]


def test_a_side_the_code_does_not_have_costs_little(
    engine: SearchEngine, codes_db_path: Path
) -> None:
    title = _title(codes_db_path, "J18.1")
    assert "lobar" in title and not {"left", "right", "lower", "upper"} & set(title.split())
    hits = [h.code for h in engine.search("left lower lobe pneumonia", limit=5)]
    assert "J18.1" in hits[:3]
    # A title that states the other side is a contradiction, not a missing axis.
    assert engine.search("pain in right knee")[0].code == "M25.561"
    assert "left" not in _title(codes_db_path, engine.search("pain in right knee")[0].code)


def test_two_words_run_together_are_read_apart(engine: SearchEngine) -> None:
    apart = engine.search("pink eye", limit=3)
    joined = engine.search("pinkeye", limit=3, explain=True)
    assert apart and [h.code for h in joined] == [h.code for h in apart]
    assert any('"pinkeye" read as "pink eye"' in line for line in joined[0].why)
    # A misspelling is corrected, not split ("diabetis" is not "dia" + "betis").
    assert engine.search("diabetis type 2")[0].code == engine.search("diabetes type 2")[0].code


def test_the_category_title_names_its_codes(engine: SearchEngine, codes_db_path: Path) -> None:
    """Index-style queries use the category's words: they count for its codes too."""
    conn = sqlite3.connect(f"file:{codes_db_path}?mode=ro", uri=True)
    try:
        (category,) = conn.execute("SELECT title FROM codes WHERE code = 'T84'").fetchone()
    finally:
        conn.close()
    assert "complication" in category.lower()
    code_title = _title(codes_db_path, "T84.53XA")
    assert "complication" not in code_title
    hits = [h.code for h in engine.search("complication, joint prosthesis, knee, infection")]
    assert any(code.startswith(("T84.53", "T84.54")) for code in hits[:5])


def test_a_rare_word_one_edit_from_a_common_one_reads_as_both(
    engine: SearchEngine, codes_db_path: Path
) -> None:
    conn = sqlite3.connect(f"file:{codes_db_path}?mode=ro", uri=True)
    try:
        df = {
            token: count
            for token, count in conn.execute(
                "SELECT token, df FROM search_postings WHERE token IN ('acut', 'acute')"
            )
        }
    finally:
        conn.close()
    assert df["acut"] <= 3 < 300 * df["acut"] <= df["acute"]  # a short-title abbreviation
    typed = engine.search("bronchitis acut", limit=3)
    meant = engine.search("bronchitis acute", limit=3)
    assert typed[0].code == meant[0].code


def test_a_modifier_named_with_the_word_modifier_comes_first(
    engine: SearchEngine, codes_db_path: Path
) -> None:
    conn = sqlite3.connect(f"file:{codes_db_path}?mode=ro", uri=True)
    try:
        modifiers = [
            key for (key,) in conn.execute("SELECT key FROM codes WHERE kind = 'modifier'")
        ]
    finally:
        conn.close()
    assert "GP" in modifiers
    for key in ("GP", "XS", modifiers[len(modifiers) // 2]):
        assert engine.search(f"{key.lower()} modifier")[0].code == key
        assert engine.search(f"modifier {key}")[0].code == key


def test_a_phrase_in_another_word_order_is_the_same_phrase(engine: SearchEngine) -> None:
    """Coders type index order ("blood pressure high"); synonym phrases of 2-3 words match
    whatever the order, as long as only one phrase has those words."""
    for typed, usual in (
        ("blood pressure high", "high blood pressure"),
        ("pressure blood high", "high blood pressure"),
    ):
        assert engine.search(typed)[0].code == engine.search(usual)[0].code
    # "both eyes" is bilateral
    hits = engine.search("pink eye both eyes", limit=5)
    assert any("bilateral" in h.title.lower() for h in hits)


def test_an_official_rewrite_that_says_less_than_ours_is_dropped(engine: SearchEngine) -> None:
    from bot.codes.search import merge_synonyms, parse_rewrites, parse_synonyms

    ours = parse_synonyms("lumpectomy\texcision breast\n")
    official = parse_rewrites(
        "lumpectomy\texcision\tPCS index\texcision\nlumpectomy\tresection\tPCS index\tresection"
    )
    merged = merge_synonyms(ours, official)[("lumpectomy",)]
    assert [syn.tokens for syn in merged] == [("excision", "breast"), ("resection",)]
    assert "breast" in engine.search("lumpectomy")[0].title.lower()
