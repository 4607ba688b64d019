"""Search lessons from fresh query sets: inclusion terms inherited by a code's side/encounter
children, sound-alike spelling, "in situ" as a context, synonym expansions with their word
forms, condition adjectives, and "encounter for" asking for ICD-10-CM. Checked on the real
code database; titles and inclusion terms are read from it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.codes.query_rules import CM_BIT, query_intent
from bot.codes.search import SearchEngine
from bot.codes.sound_alike import sound_alike_spellings


@pytest.fixture(scope="module")
def engine(codes_db_path: Path) -> SearchEngine:
    return SearchEngine.open(codes_db_path)


@pytest.fixture(scope="module")
def conn(codes_db_path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{codes_db_path}?mode=ro", uri=True)
    yield db
    db.close()


def _row(conn: sqlite3.Connection, code: str) -> tuple[str, str, str]:
    row = conn.execute(
        "SELECT title, search_terms, details FROM codes WHERE system = 'icd10cm' AND code = ?",
        (code,),
    ).fetchone()
    assert row is not None, code
    return str(row[0]), str(row[1]), str(row[2])


def test_a_side_child_inherits_its_parents_inclusion_term(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    parent_title, _terms, details = _row(conn, "M92.52")
    inclusion = json.loads(details)["notes"]["inclusion_terms"]
    assert any("osgood" in term.lower() for term in inclusion)
    child_title, child_terms, _ = _row(conn, "M92.522")
    assert child_title.startswith(parent_title) and "left" in child_title.lower()
    assert "osgood" not in (child_title + child_terms).lower()
    assert engine.search("osgood-schlatter disease left knee")[0].code == "M92.522"


def test_a_child_with_a_title_of_its_own_inherits_nothing(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    # A01.0 "Typhoid fever" includes "Infection due to Salmonella typhi"; its child A01.01
    # "Typhoid meningitis" names one manifestation, not a side or encounter of the fever.
    parent_title, parent_terms, _ = _row(conn, "A01.0")
    child_title, child_terms, _ = _row(conn, "A01.01")
    assert "salmonella" in parent_terms.lower()
    assert not child_title.startswith(parent_title)
    assert "salmonella" not in (child_title + child_terms).lower()
    for hit in engine.search("salmonella typhi meningitis", limit=10, explain=True):
        if hit.code == "A01.01":
            assert any(line.startswith('"salmonella": not in this code') for line in hit.why)


def test_misspelt_as_it_sounds() -> None:
    one, two = sound_alike_spellings("nefrectomy")
    assert "nephrectomy" in one
    one, _ = sound_alike_spellings("exema")
    assert "eczema" in one
    one, two = sound_alike_spellings("diarea")
    assert "diarrhea" in one
    _, two = sound_alike_spellings("nefrektomy")  # f -> ph, then k -> c
    assert "nephrectomy" in two
    assert sound_alike_spellings("e11.9") == (set(), set())
    assert sound_alike_spellings("x" * 200) == (set(), set())


def test_the_sound_alike_word_beats_a_nearer_one_that_sounds_different(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    # "exema" is one edit from "edema" (the commoner word) and one from "eczema".
    top = engine.search("exema", limit=3, explain=True)
    assert "eczema" in top[0].title.lower() or "dermatitis" in top[0].title.lower()
    assert any('"exema" read as "eczema"' in line for line in top[0].why)
    top = engine.search("nefrectomy", system="icd10pcs", limit=5)
    assert top and all("Resection of" in h.title and "Kidney" in h.title for h in top[:3])


def test_in_situ_is_a_context_the_query_must_ask_for(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    plain = [h.code for h in engine.search("melanoma", limit=5)]
    assert plain and plain[0].startswith("C43"), plain
    asked = engine.search("melanoma in situ", limit=3)
    assert asked[0].code.startswith("D03") and "in situ" in asked[0].title.lower()


def test_a_synonym_expansion_finds_the_other_word_form(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    # "htn" expands to "hypertension"; I13.0 says "Hypertensive"; "chf" to heart failure.
    title, _, _ = _row(conn, "I13.0")
    assert title.lower().startswith("hypertensive heart and chronic kidney disease with heart")
    assert engine.search("htn heart and ckd stage 3 with chf")[0].code == "I13.0"


def test_a_condition_adjective_finds_the_noun(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    title, _, _ = _row(conn, "Z99.2")
    assert "dependence" in title.lower() and "dependent" not in title.lower()
    assert engine.search("dialysis dependent")[0].code == "Z99.2"


def test_encounter_for_asks_for_icd10cm(engine: SearchEngine) -> None:
    assert query_intent("encounter for iud insertion") == CM_BIT
    top = engine.search("encounter for iud insertion", limit=3)
    assert top[0].code.startswith("Z30.43"), [h.code for h in top]
    # Without "encounter for", the procedure is the likelier meaning.
    assert engine.search("iud insertion", limit=1)[0].code.startswith("0UH")


def test_a_listed_without_clause_is_the_default(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    title, _, _ = _row(conn, "F03.90")
    assert title.lower().startswith("unspecified dementia, unspecified severity, without")
    assert title.count(",") >= 4 and ", and " in title  # a list of what is absent
    assert engine.search("dementia")[0].code == "F03.90"
    # A query that names one of them still finds its "with" code.
    assert engine.search("dementia with anxiety")[0].code == "F03.94"


def test_a_title_of_the_query_words_in_another_order_is_exact(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    rows = conn.execute(
        "SELECT code, title FROM codes WHERE system = 'hcpcs' AND code IN ('E3', 'E4')"
    ).fetchall()
    titles = {code: title.lower() for code, title in rows}
    # The modifiers say "Upper right, eyelid"; coders say "right upper eyelid", as do many
    # ICD-10-CM titles that add a condition word ("Chalazion right upper eyelid").
    assert titles["E3"].startswith("upper right") and titles["E4"].startswith("lower right")
    assert engine.search("right upper eyelid")[0].code == "E3"
    assert engine.search("right lower eyelid")[0].code == "E4"
    assert engine.search("chalazion right upper eyelid")[0].code.startswith("H00.1")


def test_a_misspelt_synonym_is_read_as_the_synonym(engine: SearchEngine) -> None:
    # "pseudogout" is in no title: data/synonyms.tsv reads it as chondrocalcinosis.
    right = engine.search("pseudogout", limit=3)
    assert right and all("chondrocalcinosis" in h.title.lower() for h in right)
    typo = engine.search("psuedogout", limit=3, explain=True)
    assert typo and "chondrocalcinosis" in typo[0].title.lower()
    assert any('read as "pseudogout"' in line for line in typo[0].why)


def test_a_route_the_descriptor_does_not_name_costs_little(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    (title,) = conn.execute("SELECT title FROM codes WHERE code = 'J0178'").fetchone()
    assert "aflibercept" in title.lower() and "intravitreal" not in title.lower()
    assert engine.search("eylea 2 mg intravitreal")[0].code == "J0178"


def test_status_post_frames_the_query(engine: SearchEngine, conn: sqlite3.Connection) -> None:
    title, _, _ = _row(conn, "Z90.49")
    assert title.lower().startswith("acquired absence") and "status" not in title.lower()
    top = engine.search("status post appendectomy", limit=3)
    assert top[0].code == "Z90.49", [h.code for h in top]
    # The words still count for titles that say them, and for the other code sets.
    assert engine.search("status", limit=1)[0].title.lower().endswith("status")
    assert all(h.system != "icd10pcs" for h in top)


def test_a_side_word_inside_a_synonym_phrase_stays_asked_for(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    # data/synonyms.tsv reads "orif ankle" as reposition of the tibia or fibula; coders put
    # the side in the middle ("orif right ankle fracture").
    top = engine.search("orif right ankle fracture", limit=3, explain=True)
    assert top[0].code[:4] in ("0QSG", "0QSJ") and "Right" in top[0].title, top[0]
    assert any('"orif ankle"' in line for line in top[0].why)
    left = engine.search("orif left ankle fracture", limit=1)[0]
    assert left.code[:4] in ("0QSH", "0QSK") and "Left" in left.title


def test_without_an_abbreviation_wants_its_reading_absent(
    engine: SearchEngine, conn: sqlite3.Connection
) -> None:
    title, _, _ = _row(conn, "S61.412A")
    assert title.lower().startswith("laceration without foreign body of left hand")
    top = engine.search("lac L hand w/o FB, initial", limit=3)
    assert top[0].code == "S61.412A", [h.code for h in top]
    assert all("with foreign body" not in h.title.lower() for h in top)


def test_a_side_inside_a_phrase_in_another_order(engine: SearchEngine) -> None:
    # "inguinal hernia repair" is a synonym phrase; coders also write "repair right inguinal
    # hernia", and "with mesh" makes it a Supplement with Synthetic Substitute.
    top = engine.search("open repair right inguinal hernia with mesh", limit=1)[0]
    assert top.code.startswith("0YU50J") and "Right Inguinal" in top.title


def test_answers_do_not_depend_on_earlier_queries(codes_db_path: Path) -> None:
    # Terms, titles and context factors are kept between queries; a fresh engine and one
    # that has answered other queries first must give the same hits and scores.
    queries = ["acute renal failure", "orif right ankle fracture", "exema", "dm2 with ckd 3"]
    fresh = SearchEngine.open(codes_db_path)
    used = SearchEngine.open(codes_db_path)
    try:
        for other in ("fracture", "fractured femur", "left kidney cyst", "renal", "ankle"):
            used.search(other)
        for query in queries:
            a = [(h.code, h.score) for h in fresh.search(query)]
            b = [(h.code, h.score) for h in used.search(query)]
            assert a == b and a, query
    finally:
        fresh.close()
        used.close()


def test_a_body_part_word_inside_a_synonym_phrase_stays_asked_for(engine: SearchEngine) -> None:
    # "egd with biopsy" is a synonym phrase; "gastric" (stomach) names where.
    top = engine.search("egd with gastric biopsy", limit=1)[0]
    assert top.code == "0DB68ZX" and "Stomach" in top.title, top
