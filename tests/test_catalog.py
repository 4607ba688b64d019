"""Exact lookup and suggestions against the real code database (no mocks)."""

from __future__ import annotations

import time

import pytest

from bot.codes.catalog import CodeCatalog
from bot.model import CodeCard, CodeSystem


def only(cards: list[CodeCard], system: CodeSystem) -> CodeCard:
    """The single card of one system in a lookup result."""
    matching = [c for c in cards if c.system is system]
    assert len(matching) == 1, cards
    return matching[0]


def test_e11_9_card(catalog: CodeCatalog) -> None:
    card = only(catalog.lookup("E11.9"), CodeSystem.ICD10CM)
    assert card.code == "E11.9"
    assert card.billable and card.kind == "code" and card.status == "active"
    assert [p.code for p in card.parents] == ["4", "E08-E13", "E11"]
    assert card.parents[0].title.startswith("Endocrine, nutritional and metabolic diseases")
    assert card.parents[1].title == "Diabetes mellitus"
    assert card.children == () and card.children_total == 0
    assert card.effective["release"] == "FY2027"  # in force since 2026-10-01
    assert card.source["code_set"] == "ICD-10-CM"


def test_category_is_not_billable_and_lists_children(catalog: CodeCatalog) -> None:
    card = only(catalog.lookup("E11"), CodeSystem.ICD10CM)
    assert card.kind == "category" and not card.billable
    codes = [c.code for c in card.children]
    assert "E11.9" in codes and "E11.6" in codes
    assert card.children_total == len(codes)
    assert "excludes1" in card.notes and "use_additional_code" in card.notes


def test_seventh_character_code(catalog: CodeCatalog) -> None:
    card = only(catalog.lookup("S72.001A"), CodeSystem.ICD10CM)
    assert card.billable and card.kind == "code"
    assert card.parents[-1].code == "S72.001"
    assert card.title.endswith("initial encounter for closed fracture")
    # the whole table of S72, this code's character marked (tests/test_card_notes.py)
    assert "A: initial encounter for closed fracture (this code)" in card.notes["seven_chr_def"]
    assert card.notes["seven_chr_note"]
    parent = only(catalog.lookup("S72.001"), CodeSystem.ICD10CM)
    assert not parent.billable and parent.children_total == 16
    assert parent.children[0].code == "S72.001A"
    category = only(catalog.lookup("S72"), CodeSystem.ICD10CM)
    assert any(line.startswith("A: initial encounter") for line in category.notes["seven_chr_def"])


def test_placeholder_x_codes(catalog: CodeCatalog) -> None:
    card = only(catalog.lookup("t36.0x1a"), CodeSystem.ICD10CM)
    assert card.code == "T36.0X1A" and card.billable
    assert card.parents[-1].code == "T36.0X1"
    assert only(catalog.lookup("S00.00XA"), CodeSystem.ICD10CM).parents[-1].code == "S00.00"
    # S06 codes with 6th character 7/8 (death before regaining consciousness) take only A.
    assert catalog.lookup("S06.1X7A")
    assert catalog.lookup("S06.1X7D") == []


def test_pcs_code_has_all_seven_axes(catalog: CodeCatalog) -> None:
    card = only(catalog.lookup("0dtj4zz"), CodeSystem.ICD10PCS)
    assert card.title == "Resection of Appendix, Percutaneous Endoscopic Approach"
    axes = (
        ("Section", "Medical and Surgical"),
        ("Body System", "Gastrointestinal System"),
        ("Operation", "Resection: Cutting out or off, without replacement, all of a body part"),
        ("Body Part", "Appendix"),
        ("Approach", "Percutaneous Endoscopic"),
        ("Device", "No Device"),
        ("Qualifier", "No Qualifier"),
    )
    # by position and value: "4 Body Part: J Appendix"
    assert card.attributes == tuple(
        (f"{n + 1} {title}", f"{'0DTJ4ZZ'[n]} {value}") for n, (title, value) in enumerate(axes)
    )
    assert [p.code for p in card.parents] == ["0", "0D", "0DT"]
    titles = [p.title for p in card.parents[:2]]
    assert titles == ["Medical and Surgical", "Gastrointestinal System"]


def test_pcs_table_header(catalog: CodeCatalog) -> None:
    card = only(catalog.lookup("0DT"), CodeSystem.ICD10PCS)
    assert card.kind == "table" and not card.billable
    assert len(card.children) == 50 and card.children_total > 50
    assert all(c.billable for c in card.children)


def test_key_collision_returns_both_systems_icd_first(catalog: CodeCatalog) -> None:
    cards = catalog.lookup("B00")
    assert [c.system for c in cards] == [CodeSystem.ICD10CM, CodeSystem.ICD10PCS]
    assert [c.system for c in catalog.lookup("B00.")] == [CodeSystem.ICD10CM]


def test_section_keys_are_not_typed_codes(catalog: CodeCatalog) -> None:
    assert catalog.lookup("4") == []  # chapter 4 has key CHAPTER4
    assert catalog.lookup("0D") == []  # PCS body system has key PCSBODY0D
    assert only(catalog.lookup("E08-E13"), CodeSystem.ICD10CM).kind == "block"


def test_hcpcs_code(catalog: CodeCatalog) -> None:
    card = only(catalog.lookup("a0425"), CodeSystem.HCPCS)
    assert card.code == "A0425" and card.billable and card.status == "active"
    assert card.short_title == "Ground mileage"
    assert card.parents[0].code == "A"
    attributes = dict(card.attributes)
    assert attributes["Coverage"] == "C: Carrier judgment"
    assert attributes["BETOS"] == "O1A: Ambulance"
    assert card.effective["added"] == "2001-01-01"


@pytest.mark.parametrize("typed", ["-LT", "LT", "-lt", " lt "])
def test_modifier(catalog: CodeCatalog, typed: str) -> None:
    card = only(catalog.lookup(typed), CodeSystem.HCPCS)
    assert card.code == "LT" and card.kind == "modifier"
    assert card.title.startswith("Left side")


def test_terminated_hcpcs_code_is_kept_and_marked(catalog: CodeCatalog) -> None:
    card = only(catalog.lookup("S0189"), CodeSystem.HCPCS)
    assert card.status == "terminated" and not card.billable
    assert card.effective["terminated"] == "2025-12-31"
    assert card.notes["processing_note"][0].startswith("0088:")


@pytest.mark.parametrize("typed", ["E11.9", "e11.9", "E119", "e119", " E11.9 ", "E 11.9"])
def test_case_dot_space_insensitive(catalog: CodeCatalog, typed: str) -> None:
    assert [c.code for c in catalog.lookup(typed)] == ["E11.9"]


def test_unknown_codes(catalog: CodeCatalog) -> None:
    assert catalog.lookup("E11.99") == []
    assert catalog.lookup("") == []
    assert catalog.lookup("0DT.J4ZZ") == []  # a dot means ICD-10-CM only


def test_get(catalog: CodeCatalog) -> None:
    card = catalog.get(CodeSystem.ICD10CM, "E11.9")
    assert card is not None and card.code == "E11.9"
    assert catalog.get("icd10cm", "e119") is not None
    chapter = catalog.get(CodeSystem.ICD10CM, "4")
    assert chapter is not None and chapter.kind == "chapter"
    assert catalog.get(CodeSystem.HCPCS, "E11.9") is None


def test_suggestions(catalog: CodeCatalog) -> None:
    codes = [r.code for r in catalog.suggest("E11.99")]
    assert codes[0] == "E11.9" and "E11.69" in codes
    assert catalog.suggest("S72001")[0].code == "S72.001A"
    assert catalog.suggest("0DTJ4ZX")[0].code == "0DTJ4ZZ"
    assert [r.code for r in catalog.suggest("A0426")][:2] == ["A0425", "A0427"]
    assert all(r.system is CodeSystem.ICD10CM for r in catalog.suggest("S72.001Z"))
    assert len(catalog.suggest("S72.001Z", limit=3)) == 3
    assert catalog.suggest("") == []


def test_suggest_is_fast(catalog: CodeCatalog) -> None:
    queries = ["E11.99", "S72001", "0DTJ4ZX", "A0426", "Z99.99", "S72.001Z", "R69X"]
    for query in queries:
        catalog.suggest(query)  # warm the page cache and the prefix cache
    started = time.perf_counter()
    for query in queries * 10:
        catalog.suggest(query)
    per_call = (time.perf_counter() - started) / (len(queries) * 10)
    assert per_call < 0.005


def test_lookup_is_fast(catalog: CodeCatalog) -> None:
    codes = ["E11.9", "S72.001A", "0DTJ4ZZ", "A0425", "LT", "I10", "J44.9", "E11"]
    for code in codes:
        catalog.lookup(code)
    started = time.perf_counter()
    for code in codes * 50:
        catalog.lookup(code)
    assert (time.perf_counter() - started) / (len(codes) * 50) < 0.002  # bench: p50 ~0.1 ms


def test_releases(catalog: CodeCatalog) -> None:
    systems = [s.system for s in catalog.releases()]
    assert systems[:3] == ["icd10cm", "icd10pcs", "hcpcs"]
    pcs = next(s for s in catalog.releases() if s.system == "icd10pcs")
    assert pcs.release == "FY2027"
    assert pcs.counts["codes"] == catalog.calendar.releases("icd10pcs")[-1].counts["billable"]


def test_category_instructions_are_inherited_with_their_source(catalog: CodeCatalog) -> None:
    (card,) = catalog.lookup("E11.9")
    additional = card.notes["use_additional_code"]
    assert any("insulin (Z79.4)" in line and line.endswith("[E11]") for line in additional)
    assert card.notes["excludes1"][0].startswith("type 2 diabetes mellitus, without")  # own first
    (fracture,) = catalog.lookup("S72.001A")
    assert any(line.endswith("[S72]") for line in fracture.notes["excludes1"])
    (pcs,) = catalog.lookup("0DTJ4ZZ")
    assert not any("[" in line for lines in pcs.notes.values() for line in lines)
