"""Search vocabulary from official sources (bot.codes.vocabulary and its readers).

Every expectation is read from the source files here (PCS index XML, CM Table of Drugs XML,
the FDA UNII names file in the pinned wheel), never typed in by hand.
"""

from __future__ import annotations

import gzip
import random
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.codes.search import SearchEngine
from bot.codes.search_index import tokenize
from bot.codes.sources import DATA_DIR, brand_names, cm_tables, pcs_definitions, pcs_index
from bot.codes.vocabulary import IndexTerm, Rewrite, Vocabulary, load_vocabulary


@pytest.fixture(scope="module")
def engine(codes_db_path: Path) -> Iterator[SearchEngine]:
    opened = SearchEngine.open(codes_db_path)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def title_words(codes_db_path: Path) -> frozenset[str]:
    conn = sqlite3.connect(f"file:{codes_db_path}?mode=ro", uri=True)
    try:
        words: set[str] = set()
        for (title,) in conn.execute("SELECT title FROM codes"):
            words.update(tokenize(title))
        return frozenset(words)
    finally:
        conn.close()


def _one_word_procedures(title_words: frozenset[str]) -> list[tuple[str, list[str]]]:
    """PCS index main terms of one word that no code title uses ("Appendectomy"), each with
    the code prefixes its `see` entries point to, read from the index XML."""
    with gzip.open(DATA_DIR / "icd10pcs" / pcs_index.FILE, "rb") as fh:
        root = ET.parse(fh).getroot()
    out: list[tuple[str, list[str]]] = []
    for main in root.iter("mainTerm"):
        title = (main.findtext("title") or "").strip()
        tokens = tokenize(title)
        if len(tokens) != 1 or not title.isalpha() or tokens[0] in title_words:
            continue
        targets = [c.text or "" for see in main.iter("see") for c in see.findall("codes")]
        if targets and len(main.findall("term")) == len(targets):
            out.append((title, targets))
    return out


def test_pcs_index_procedure_names_find_their_codes(
    engine: SearchEngine, title_words: frozenset[str]
) -> None:
    terms = _one_word_procedures(title_words)
    assert len(terms) > 50
    sample = random.Random(11).sample(terms, 40)
    found = 0
    for title, targets in sample:
        hits = engine.search(title, limit=5)
        if any(h.code.startswith(tuple(targets)) for h in hits):
            found += 1
    assert found / len(sample) >= 0.95, found


def test_explain_names_the_index_term(engine: SearchEngine, title_words: frozenset[str]) -> None:
    title, targets = _one_word_procedures(title_words)[0]
    hits = engine.search(title, limit=5, explain=True)
    hit = next(h for h in hits if h.code.startswith(tuple(targets)))
    assert any("index term (PCS index)" in line and title in line for line in hit.why), hit.why
    # Without explain nothing is computed.
    assert all(not h.why for h in engine.search(title, limit=5))


def test_drug_table_substances_reach_their_poisoning_codes(engine: SearchEngine) -> None:
    with gzip.open(DATA_DIR / "icd10cm" / cm_tables.DRUG_FILE, "rb") as fh:
        root = ET.parse(fh).getroot()
    rows: list[tuple[str, str]] = []
    for main in root.iter("mainTerm"):
        title = main.find("title")
        name = (title.text or "").strip() if title is not None else ""
        cell = main.find("cell[@col='2']")
        if (
            name.isalpha()
            and len(name) > 5
            and cell is not None
            and cm_tables.code_key(cell.text or "")
        ):
            rows.append((name, cell.text or ""))
    sample = random.Random(7).sample(rows, 40)
    found = 0
    for name, code in sample:
        hits = engine.search(f"poisoning by {name} accidental", system="icd10cm", limit=5)
        if any(h.code.startswith(code) for h in hits):
            found += 1
    assert found / len(sample) >= 0.9, found


def test_brand_names_find_the_generic_drug(
    engine: SearchEngine, title_words: frozenset[str]
) -> None:
    vocab = brand_names.load()
    candidates = [
        r
        for r in vocab.rewrites
        if " " not in r.phrase
        and " " not in r.expansion
        and r.expansion in title_words
        and not any(t in title_words for t in tokenize(r.phrase))
    ]
    assert len(candidates) > 50
    sample = random.Random(3).sample(candidates, 30)
    found = 0
    for rewrite in sample:
        hits = engine.search(rewrite.phrase, limit=5, explain=True)
        generic = [h for h in hits if rewrite.expansion in tokenize(h.title)]
        if generic:
            found += 1
            # The brand rewrite, or the Table of Drugs, which lists some brands itself.
            why = " ".join(generic[0].why)
            assert "brand name" in why or "(Table of Drugs)" in why, why
    assert found / len(sample) >= 0.9, found


def test_definitions_rewrite_includes_to_value_names() -> None:
    vocab = pcs_definitions.load()
    with gzip.open(DATA_DIR / "icd10pcs" / pcs_definitions.FILE, "rb") as fh:
        root = ET.parse(fh).getroot()
    body = next(a for a in root.iter("axis") if (a.findtext("title") or "") == "Body Part")
    entry = next(t for t in body.findall("terms") if t.find("includes") is not None)
    include = (entry.findtext("includes") or "").strip()
    names = {pcs_index.value_words(t.text or "") for t in entry.findall("title")}
    assert {r.expansion for r in vocab.rewrites if r.phrase == include} & names


def test_build_reports_followed_and_dropped_targets(tmp_path: Path) -> None:
    from bot.codes.schema import CODES_DDL
    from bot.codes.search_index import build_search_index

    db = tmp_path / "small.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(CODES_DDL)
    conn.executemany(
        "INSERT INTO codes (id, system, code, key, kind, title, billable, sort_order, parent_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                1,
                "icd10cm",
                "D69.1",
                "D691",
                "subcategory",
                "Qualitative platelet defects",
                0,
                1,
                None,
            ),
            (2, "icd10cm", "D69.10", "D6910", "code", "Platelet defect unspecified", 1, 2, 1),
            (3, "icd10cm", "R51.9", "R519", "code", "Headache, unspecified", 1, 3, None),
        ],
    )
    vocab = Vocabulary(
        [
            IndexTerm("Test", "Thrombasthenia", "icd10cm", "D691"),  # now a header: followed
            IndexTerm("Test", "Cephalgia", "icd10cm", "R519"),  # as written
            IndexTerm("Test", "Gone", "icd10cm", "Q999"),  # dropped
        ],
        [Rewrite("Test", "brandx", "headache", name=True), Rewrite("Test", "x", "nowhere")],
    )
    lines: list[str] = []
    build_search_index(
        conn, progress=lines.append, synonyms_path=tmp_path / "none", vocabulary=vocab
    )
    conn.commit()
    conn.close()
    report = next(line for line in lines if "vocabulary Test" in line)
    assert "1 terms reach their FY2026 codes as written" in report
    assert "1 point to a code that has FY2026 children" in report
    assert "1 point to no FY2026 code (dropped)" in report
    assert any("1 of 2 source rewrites kept" in line for line in lines)
    tiny = SearchEngine.open(db)
    try:
        assert {h.code for h in tiny.search("thrombasthenia")} == {"D69.1", "D69.10"}
        assert tiny.search("cephalgia")[0].code == "R51.9"
        assert tiny.search("brandx")[0].code == "R51.9"
        assert not tiny.search("gone")
    finally:
        tiny.close()


def test_missing_source_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="icd10pcs_index_2025"):
        pcs_index.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="icd-10-cm-drug-2025"):
        cm_tables.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="icd10pcs_definitions_2026"):
        pcs_definitions.load(tmp_path)


def test_load_vocabulary_reports_each_reader() -> None:
    lines: list[str] = []
    vocab = load_vocabulary(
        [("one", lambda: Vocabulary([IndexTerm("s", "t", "icd10cm", "A00")], [], []))],
        progress=lines.append,
    )
    assert len(vocab.terms) == 1
    assert lines and "vocabulary one: 1 index terms" in lines[0]


def test_icd9_titles_lead_to_their_icd10_codes(engine: SearchEngine) -> None:
    from bot.codes.sources import icd9_terms

    vocab = icd9_terms.load()
    assert vocab.terms and all(t.system == "icd10cm" for t in vocab.terms)
    assert not any("not stated as" in t.term.lower() for t in vocab.terms)
    sample = random.Random(5).sample(vocab.terms, 40)
    found = 0
    for term in sample:
        hits = engine.search(term.term, system="icd10cm", limit=10)
        if any(h.code.replace(".", "").startswith(term.target) for h in hits):
            found += 1
    assert found / len(sample) >= 0.8, found
