"""Every instructional note that applies to an ICD-10-CM code is on its card (issue 9, 1-5).

Expected text is read from the CDC tabular XML shipped in simple-icd-10-cm with ElementTree
here, independently of the reader under test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache

import pytest

from bot.codes.catalog import CodeCatalog
from bot.codes.sources.icd10cm import xml_path
from bot.model import CodeCard, CodeSystem

SENTENCE_VERBS = {
    "code_first": "Code first",
    "use_additional_code": "Use additional",
    "code_also": "Code also",
}


@cache
def tabular() -> ET.Element:
    return ET.parse(xml_path()).getroot()


def words(elem: ET.Element) -> str:
    return " ".join((elem.text or "").split())


def chapter(number: str) -> ET.Element:
    return next(c for c in tabular().iter("chapter") if words(c.find("name")) == number)  # type: ignore[arg-type]


def section(block: str) -> ET.Element:
    return next(s for s in tabular().iter("section") if s.get("id") == block)


def diag(code: str) -> ET.Element:
    return next(d for d in tabular().iter("diag") if words(d.find("name")) == code)  # type: ignore[arg-type]


def xml_notes(elem: ET.Element, tag: str) -> list[str]:
    """The `<note>` texts of the `tag` elements directly under `elem`."""
    return [words(n) for child in elem.findall(tag) for n in child.iter("note") if words(n)]


def card(catalog: CodeCatalog, code: str) -> CodeCard:
    (found,) = [c for c in catalog.lookup(code) if c.system is CodeSystem.ICD10CM]
    return found


def test_block_notes_apply_to_i10(catalog: CodeCatalog) -> None:
    block = section("I10-I1A")
    excludes1 = xml_notes(block, "excludes1")
    assert "neonatal hypertension (P29.2)" in excludes1
    notes = card(catalog, "I10").notes
    for line in excludes1:
        assert f"{line} [I10-I1A]" in notes["excludes1"]
    tobacco = xml_notes(block, "useAdditionalCode")
    (sentence,) = [s for s in notes["use_additional_code"] if s.endswith("[I10-I1A]")]
    assert sentence.startswith("Use additional " + tobacco[0])
    assert all(item in sentence for item in tobacco[1:])


def test_chapter_15_notes_apply_to_o09_523(catalog: CodeCatalog) -> None:
    ch15 = chapter("15")
    maternal = xml_notes(ch15, "notes")
    assert any("MATERNAL RECORDS" in line for line in maternal)
    notes = card(catalog, "O09.523").notes
    for line in maternal:
        assert f"{line} [ch. 15]" in notes["notes"]
    (z3a,) = xml_notes(ch15, "useAdditionalCode")
    assert "Z3A" in z3a
    assert f"Use additional {z3a} [ch. 15]" in notes["use_additional_code"]


def test_chapter_19_and_category_notes_apply_to_s72_001a(catalog: CodeCatalog) -> None:
    notes = card(catalog, "S72.001A").notes
    chapter_notes = xml_notes(chapter("19"), "notes")
    assert chapter_notes[0].startswith("Use secondary code(s) from Chapter 20")
    assert f"{chapter_notes[0]} [ch. 19]" in notes["notes"]
    category_notes = xml_notes(diag("S72"), "notes")
    assert any("coded to displaced" in line for line in category_notes)
    assert any("coded to closed" in line for line in category_notes)
    for line in category_notes:
        assert f"{line} [S72]" in notes["notes"]


@pytest.mark.parametrize("category", ["S12", "S22", "S32", "S42", "S52", "S62", "S82", "S92"])
def test_fracture_category_notes_reach_their_codes(catalog: CodeCatalog, category: str) -> None:
    expected = xml_notes(diag(category), "notes")
    assert any("displaced" in line for line in expected)
    first_code = catalog.suggest(category, limit=1)[0]
    assert len(first_code.code) == 8  # a 7-character code, three levels down
    notes = card(catalog, first_code.code).notes
    for line in expected:
        assert f"{line} [{category}]" in notes["notes"]


def test_z68_adult_age_rule(catalog: CodeCatalog) -> None:
    expected = xml_notes(diag("Z68"), "notes")
    assert any("adult" in line.lower() for line in expected)
    notes = card(catalog, "Z68.41").notes
    for line in expected:
        assert f"{line} [Z68]" in notes["notes"]


def test_block_code_also_applies_to_i21_9(catalog: CodeCatalog) -> None:
    (code_also,) = xml_notes(section("I20-I25"), "codeAlso")
    assert "hypertension" in code_also
    assert f"Code also {code_also} [I20-I25]" in card(catalog, "I21.9").notes["code_also"]


def test_one_category_block_keeps_its_notes(catalog: CodeCatalog) -> None:
    expected = xml_notes(section("T07"), "excludes1")
    assert any("burns" in line for line in expected)
    assert any("frostbite" in line for line in expected)
    excludes1 = card(catalog, "T07.XXXA").notes["excludes1"]
    for line in expected:
        assert f"{line} [T07]" in excludes1


def test_lead_ins_read_as_sentences(catalog: CodeCatalog) -> None:
    parts = xml_notes(diag("E11"), "useAdditionalCode")
    assert parts[0].endswith(":")
    expected = f"Use additional {parts[0]} {', '.join(parts[1:])} [E11]"
    assert expected in card(catalog, "E11.9").notes["use_additional_code"]
    for code in ("E11.9", "I10", "S06.0X1A", "H01.001", "D46.9", "C93.10", "I21.9", "O09.523"):
        for kind, lines in card(catalog, code).notes.items():
            for line in lines:
                assert ":;" not in line and ": ," not in line and ":," not in line, line
                if kind in SENTENCE_VERBS:
                    assert line.startswith(SENTENCE_VERBS[kind]), line


def test_comma_lead_in_attaches_to_its_verb(catalog: CodeCatalog) -> None:
    owner = next(
        d
        for d in tabular().iter("diag")
        if any(words(n).startswith(", if applicable") for n in d.findall("codeAlso/note"))
    )
    code = words(owner.find("name"))  # type: ignore[arg-type]
    (first,) = [words(n) for n in owner.findall("codeAlso/note")][:1]
    assert "Code also" + first in card(catalog, code).notes["code_also"][0]


def test_seventh_character_table_on_a_seven_character_code(catalog: CodeCatalog) -> None:
    definition = diag("S72").find("sevenChrDef")
    assert definition is not None
    extensions = {e.get("char"): words(e) for e in definition.iter("extension")}
    table = card(catalog, "S72.001A").notes["seven_chr_def"]
    assert len(table) == len(extensions)
    for char, meaning in extensions.items():
        assert any(line.startswith(f"{char}: {meaning}") for line in table), char
    assert any(line.startswith("A:") and line.endswith("(this code)") for line in table)
    note = words(definition.find("note"))  # type: ignore[arg-type]
    (b_line,) = [line for line in table if line.startswith("B:")]
    assert note.endswith("open fracture NOS")
    assert b_line == f"B: {extensions['B']} / open fracture NOS"


def test_except_as_noted_below_is_never_dangling(catalog: CodeCatalog) -> None:
    seven_note = xml_notes(diag("S06"), "sevenChrNote")[0]
    assert seven_note.endswith("except as noted below")
    exception = next(n for n in xml_notes(diag("S06"), "notes") if "7th character" in n)
    for code in ("S06.0X1A", "S06.0X1"):
        lines = card(catalog, code).notes["seven_chr_note"]
        assert not any(line.endswith("noted below") for line in lines)
        assert any(exception in line for line in lines)


def test_pcs_cards_have_no_inherited_tags(catalog: CodeCatalog) -> None:
    (pcs,) = catalog.lookup("0DTJ4ZZ")
    assert not any(line.endswith("]") for lines in pcs.notes.values() for line in lines)
