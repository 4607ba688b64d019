"""Query-intent, qualifier and ranking-hygiene rules (bot.codes.query_rules and their use in
bot.codes.search) on the real code database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.search_bench import load_dev
from bot.codes.query_rules import (
    CM_BIT,
    HCPCS_BIT,
    PCS_BIT,
    Qualifiers,
    normalize_query,
    qualifier_factor,
    query_intent,
    soft_word,
)
from bot.codes.search import SearchEngine, _hygiene
from bot.codes.search_index import FLAG_TERMINATED, tokenize

ROOT = Path(__file__).resolve().parents[1]
DEV_SETS = [
    ROOT / "benchmarks" / "data" / "search-dev.tsv",
    ROOT / "benchmarks" / "data" / "search-dev-v2.tsv",
]


@pytest.fixture(scope="module")
def engine(codes_db_path: Path) -> Iterator[SearchEngine]:
    opened = SearchEngine.open(codes_db_path)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def db(codes_db_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{codes_db_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def test_without_shorthand_is_normalised() -> None:
    assert tokenize(normalize_query("walker w/o wheels")) == ["walker", "without", "wheel"]
    assert "without" in tokenize(normalize_query("hernia no gangrene"))
    assert normalize_query("knee brace") == "knee brace"


@pytest.mark.parametrize(
    ("query", "intent"),
    [
        ("lap appendectomy", PCS_BIT),
        ("orif left ankle", PCS_BIT),
        ("i&d abscess", PCS_BIT),
        ("ketorolac 30 mg injection", HCPCS_BIT),
        ("right side modifier", HCPCS_BIT),
        ("status post left bka", CM_BIT),
        ("s/p appendectomy", CM_BIT),
        ("history of falling", CM_BIT),
        ("diabetes", 0),
        ("biopsy 10 mg", 0),  # two sets asked for: no intent
    ],
)
def test_query_intent(query: str, intent: int) -> None:
    assert query_intent(query) == intent


def test_soft_words() -> None:
    assert soft_word("60") and soft_word("mg") and soft_word("im")
    assert not soft_word("denosumab")


def test_qualifier_conflicts() -> None:
    right = Qualifiers.of(tokenize("dvt right leg"))
    assert qualifier_factor(right, tokenize("thrombosis of left leg")) < 1.0
    assert qualifier_factor(right, tokenize("thrombosis of right leg")) == 1.0
    assert qualifier_factor(right, tokenize("thrombosis of leg")) == 1.0
    acute = Qualifiers.of(tokenize("acute heart failure"))
    assert qualifier_factor(acute, tokenize("chronic heart failure")) < 1.0
    assert qualifier_factor(acute, tokenize("acute on chronic heart failure")) == 1.0
    wheels = Qualifiers.of(tokenize("walker with wheels"))
    assert qualifier_factor(wheels, tokenize("walker folding without wheels")) < 1.0
    assert qualifier_factor(wheels, tokenize("walker folding wheeled")) == 1.0
    no_gangrene = Qualifiers.of(tokenize(normalize_query("hernia no gangrene")))
    assert qualifier_factor(no_gangrene, tokenize("hernia with gangrene")) < 1.0
    assert qualifier_factor(no_gangrene, tokenize("hernia without gangrene")) == 1.0


def _titles(db: sqlite3.Connection, system: str, like: str) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT code, title FROM codes WHERE system = ? AND title LIKE ? AND billable = 1",
        (system, like),
    ).fetchall()


def test_with_ranks_above_without(engine: SearchEngine, db: sqlite3.Connection) -> None:
    # HCPCS walkers: some titles say "without wheels", some "with wheels"/"wheeled".
    assert _titles(db, "hcpcs", "%walker%without wheels%")
    hits = engine.search("walker with wheels", limit=5)
    assert "without wheels" not in hits[0].title.lower()


def test_laterality_of_the_query_wins(engine: SearchEngine) -> None:
    for side, other in (("right", "left"), ("left", "right")):
        hits = engine.search(f"acute dvt {side} leg", system="icd10cm", limit=5)
        top = hits[0].title.lower()
        assert side in top and other not in top, top


def test_procedure_words_ask_for_pcs(engine: SearchEngine) -> None:
    for query in ("orif ankle", "lap appendectomy", "meniscectomy"):
        assert engine.search(query, limit=1)[0].system.value == "icd10pcs", query


def test_dose_words_ask_for_hcpcs(engine: SearchEngine) -> None:
    assert engine.search("ketorolac 15 mg", limit=1)[0].system.value == "hcpcs"


def test_status_post_asks_for_a_diagnosis(engine: SearchEngine) -> None:
    hit = engine.search("status post left bka", limit=1)[0]
    assert hit.system.value == "icd10cm" and hit.code.startswith("Z"), hit


def _all_dev_queries() -> list[str]:
    return [q for path in DEV_SETS for q, _ in load_dev(path)]


def test_terminated_codes_never_rank_above_valid_ones(
    engine: SearchEngine, db: sqlite3.Connection
) -> None:
    rows = db.execute(
        "SELECT code, title FROM codes WHERE system = 'hcpcs' AND status = 'terminated'"
        " AND kind = 'code' ORDER BY code LIMIT 400"
    ).fetchall()
    terminated = {c for (c,) in db.execute("SELECT code FROM codes WHERE status = 'terminated'")}
    # The example: G6024 (terminated) ranked first for "colonoscopy with biopsy".
    for query in ["colonoscopy with biopsy", "colonoscopy", "wheelchair", "knee brace"]:
        assert not [h.code for h in engine.search(query, limit=5) if h.code in terminated]
    # The rule itself: a terminated code goes below every valid one at least half as good.
    state = engine._state()
    dead = next(d for d in range(state.n_docs) if state.doc_flags[d] & FLAG_TERMINATED)
    live = next(d for d in range(state.n_docs) if not state.doc_flags[d] & FLAG_TERMINATED)
    assert [d for d, _ in _hygiene(state, [(dead, 1.0), (live, 0.6)])] == [live, dead]
    assert [d for d, _ in _hygiene(state, [(dead, 1.0), (live, 0.4)])] == [dead, live]
    # A terminated code stays findable: its own title finds it.
    sample = rows[::20]
    found = sum(
        any(h.code == code for h in engine.search(title, limit=10)) for code, title in sample
    )
    assert found >= 0.8 * len(sample), found


def test_header_never_above_its_billable_child(engine: SearchEngine) -> None:
    for query in _all_dev_queries():
        hits = engine.search(query, limit=10)
        for i, header in enumerate(hits):
            if header.billable:
                continue
            key = header.code.replace(".", "")
            for child in hits[i + 1 :]:
                assert not (
                    child.billable
                    and child.system == header.system
                    and child.code.replace(".", "").startswith(key)
                ), (query, header.code, child.code)


def test_other_than_negates_like_without(db: sqlite3.Connection) -> None:
    rows = _titles(db, "hcpcs", "%crutch%other than wood%")
    assert rows
    wooden = Qualifiers.of(tokenize("wooden underarm crutches"))
    for _code, title in rows:
        assert qualifier_factor(wooden, tokenize(title)) < 1.0, title
    for _code, title in _titles(db, "hcpcs", "%crutch%underarm, wood%"):
        assert qualifier_factor(wooden, tokenize(title)) == 1.0, title
    # "more than" / "less than" say nothing is absent
    assert qualifier_factor(wooden, tokenize("crutch more than wood")) == 1.0


def test_wooden_crutches_are_the_wood_ones(engine: SearchEngine) -> None:
    hits = engine.search("wooden underarm crutches", limit=3)
    assert "other than" not in hits[0].title.lower(), hits[0]


def test_negation_counts_the_words_a_synonym_gave(engine: SearchEngine) -> None:
    # "bleeding" is "hemorrhage" in titles: "without hemorrhage" is not what was asked
    luts = Qualifiers.of(tokenize("bph luts"))
    title = tokenize("benign prostatic hyperplasia without lower urinary tract symptoms")
    assert qualifier_factor(luts, title) == 1.0
    assert qualifier_factor(luts, title, frozenset(tokenize("lower urinary tract"))) < 1.0
    hits = engine.search("gastric ulcer with bleeding", limit=3)
    assert "without" not in hits[0].title.lower(), hits[0]


def test_cesarean_section_names_the_procedure() -> None:
    for query in ("c-section", "c section", "cesarean section low transverse", "csection"):
        assert query_intent(query) == PCS_BIT, query
    # "cesarean delivery" also names pregnancy diagnoses ("previous cesarean delivery")
    assert query_intent("scar from previous cesarean delivery") == 0


def test_history_of_alone_is_the_patients_own(engine: SearchEngine, db: sqlite3.Connection) -> None:
    family = _titles(db, "icd10cm", "Family history of stroke%")
    assert family
    title = tokenize(family[0][1])
    assert qualifier_factor(Qualifiers.of(tokenize("history of stroke")), title) < 1.0
    assert qualifier_factor(Qualifiers.of(tokenize("family history of stroke")), title) == 1.0
    top = engine.search("history of stroke", limit=3)[0]
    assert top.title.lower().startswith("personal history"), top


def test_british_spellings_read_as_american(engine: SearchEngine) -> None:
    for british, american in (
        ("oedema", "edema"),
        ("oesophagitis", "esophagitis"),
        ("haemorrhage", "hemorrhage"),
        ("anaemia", "anemia"),
        ("diarrhoea", "diarrhea"),
        ("tumour", "tumor"),
    ):
        assert normalize_query(british) == american
    for word in ("four hours", "shoe", "toe pain", "flour"):
        assert normalize_query(word) == word
    top = engine.search("oedema", limit=3)[0]
    assert "edema" in top.title.lower(), top


def test_a_without_clause_negates_its_next_words(db: sqlite3.Connection) -> None:
    without = _titles(db, "icd10cm", "Age-related osteoporosis without current pathological%")
    assert without
    asked = Qualifiers.of(tokenize("osteoporosis with pathological fracture"))
    assert qualifier_factor(asked, tokenize(without[0][1])) < 1.0
    # the site after the clause is not negated, nor is what a title does not mention
    trichiasis = _titles(db, "icd10cm", "Trichiasis without entropion right upper eyelid")
    assert trichiasis
    eyelid = Qualifiers.of(tokenize("trichiasis right upper eyelid"))
    assert qualifier_factor(eyelid, tokenize(trichiasis[0][1])) == 1.0
    silent = _titles(db, "icd10cm", "%without mention of lumbar back pain%")
    assert silent
    lumbar = Qualifiers.of(tokenize("disc degeneration lumbar"))
    assert qualifier_factor(lumbar, tokenize(silent[0][1])) == 1.0
    # a word the title also says outright is not absent ("hypertensive heart ... without
    # heart failure")
    heart = _titles(db, "icd10cm", "Hypertensive heart and chronic kidney disease without heart%")
    assert heart
    asked = Qualifiers.of(tokenize("hypertensive heart and kidney disease"))
    assert qualifier_factor(asked, tokenize(heart[0][1])) == 1.0


def test_history_shorthand_reads_as_words(engine: SearchEngine) -> None:
    assert normalize_query("hx of mi") == "history of mi"
    assert normalize_query("h/o stroke") == "history of stroke"
    assert normalize_query("fhx breast cancer") == "family history breast cancer"
    assert normalize_query("phx") == "phx"
    # so the phrase "history of mi" (old myocardial infarction) also reads "hx of mi"
    top = engine.search("hx of mi", limit=3)[0]
    assert top.title.lower().startswith("old myocardial infarction"), top


def test_non_negates_the_next_word(db: sqlite3.Connection, engine: SearchEngine) -> None:
    rows = _titles(db, "hcpcs", "%gauze%non-sterile%")
    assert rows
    sterile = Qualifiers.of(tokenize("gauze pad sterile"))
    for _code, title in rows:
        assert qualifier_factor(sterile, tokenize(title)) < 1.0, title
    assert "non-sterile" not in engine.search("gauze pad sterile")[0].title.lower()
    # A query that says "non-..." itself agrees with a "non-..." title.
    (nstemi,) = _titles(db, "icd10cm", "non-st elevation (nstemi) myocardial infarction")
    assert engine.search("nstemi")[0].code == nstemi[0]
    assert engine.search("non st elevation mi")[0].code == nstemi[0]


def test_status_words_and_fracture_reduction_set_the_code_set() -> None:
    assert query_intent("left knee replacement status") == CM_BIT
    assert query_intent("pacemaker status") == CM_BIT
    assert query_intent("open reduction distal radius fracture left") == PCS_BIT
    assert query_intent("closed reduction nasal fracture") == PCS_BIT
    assert query_intent("reduction deformity of upper limb") == 0
