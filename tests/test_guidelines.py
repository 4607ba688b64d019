"""Official Guidelines: split by their own numbering, searched, quoted as written (issue 10).

The expected text is read from the CDC PDF in the test with pypdf (only the pages needed),
so a quote that does not stand in the PDF fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from bot.codes.catalog import CodeCatalog
from bot.codes.guideline_index import normalize_section
from bot.codes.knowledge import KnowledgeBase
from bot.codes.sources import guidelines
from bot.commands import CommandKind, parse
from bot.knowledge_answers import KnowledgeAnswers
from bot.knowledge_cards import with_coding
from bot.model import CodeCard
from bot.render import render_card


@pytest.fixture(scope="module")
def answers(codes_db_path: Path) -> Iterator[tuple[KnowledgeAnswers, KnowledgeBase, CodeCatalog]]:
    knowledge = KnowledgeBase.open(codes_db_path)
    catalog = CodeCatalog.open(codes_db_path)
    yield KnowledgeAnswers(knowledge, catalog), knowledge, catalog
    knowledge.close()
    catalog.close()


def _squeeze(text: str) -> str:
    """Text without whitespace or the running page headers, to compare across line breaks."""
    squeezed = re.sub(r"\s+", "", text)
    return re.sub(
        r"ICD-10-CMOfficialGuidelinesforCodingandReportingFY2026Page\d+of\d+", "", squeezed
    )


@pytest.fixture(scope="module")
def pdf() -> PdfReader:
    return PdfReader(guidelines.PDF_PATH)


def _pages(pdf: PdfReader, first: int, last: int) -> str:
    return "".join(pdf.pages[n - 1].extract_text() for n in range(first, last + 1))


def test_sepsis_answer_quotes_section_i_c_1_d(answers, pdf: PdfReader) -> None:  # type: ignore[no-untyped-def]
    knowledge_answers, _, _ = answers
    answer = knowledge_answers.answer(("guidelines", "sepsis"), date(2026, 12, 1))
    assert answer.found
    first = answer.data["sections"][0]
    assert first["section"] == "I.C.1.d"
    # The contents list I.C.1.d's heading under Chapter 1 (pages 2-6)...
    contents = _squeeze(_pages(pdf, 2, 6))
    assert _squeeze(f"d. {first['heading']}") in contents
    # ...and the quoted passage stands in the PDF on the section's pages, word for word.
    section_pages = _squeeze(_pages(pdf, first["page"], first["page"] + 5))
    passage = first["passage"].removesuffix(" …")
    assert _squeeze(passage) in section_pages
    assert "Section I.C.1.d" in answer.text and f"\u201c{passage[:40]}" in answer.text


def test_full_section_on_demand(answers, pdf: PdfReader) -> None:  # type: ignore[no-untyped-def]
    knowledge_answers, _, _ = answers
    answer = knowledge_answers.answer(("guideline", "I.C.1.d"), date(2026, 12, 1))
    assert answer.found and answer.data["section"] == "I.C.1.d"
    text = answer.data["text"]
    assert _squeeze(text[:2000]) in _squeeze(_pages(pdf, 23, 25))
    # the section stops where the next listed heading (e. MRSA) starts
    nxt = knowledge_answers.answer(("guideline", "I.C.1.e"), date(2026, 12, 1))
    assert _squeeze(nxt.data["heading"][:20]) not in _squeeze(text)


def test_a_card_links_its_chapter_guideline(answers) -> None:  # type: ignore[no-untyped-def]
    _, knowledge, catalog = answers
    [card] = with_coding(catalog.lookup("E11.9"), knowledge, date(2026, 12, 1))
    assert isinstance(card, CodeCard) and card.coding is not None
    assert card.coding.guideline is not None
    section, _heading = card.coding.guideline
    assert section.startswith("I.C.4")  # E11.9 is in chapter 4
    stored = knowledge.guidelines.section(section)
    assert stored is not None and "E11" in stored.body  # the section that names E11
    assert f"/code guideline {section}" in render_card(card)


def test_every_contents_entry_is_a_section() -> None:
    sections = guidelines.read()
    numbers = [s.section for s in sections]
    assert len(numbers) == len(set(numbers))
    for chapter in range(1, 23):
        assert f"I.C.{chapter}" in numbers
    assert {"I", "II", "III", "IV", "I.C.1.d", "I.C.4.a", "II.A"} <= set(numbers)


@pytest.mark.parametrize(
    ("typed", "number"),
    [("I.C.1.d", "I.C.1.d"), ("i.c.1.d", "I.C.1.d"), ("Section I.C.4.a.", "I.C.4.a"), ("IV", "IV")],
)
def test_section_numbers(typed: str, number: str) -> None:
    assert normalize_section(typed) == number


def test_grammar_and_bad_input(answers) -> None:  # type: ignore[no-untyped-def]
    knowledge_answers, _, _ = answers
    assert parse("/code guidelines sepsis").kind is CommandKind.KNOWLEDGE
    assert parse("/code guideline").kind is CommandKind.INVALID
    for words in (("guideline", "X.9"), ("guidelines", "zzqqxx"), ("guidelines", '"*^(')):
        answer = knowledge_answers.answer(words, date(2026, 12, 1))
        assert not answer.found and len(answer.text) < 200
    # SQL in the words is only words: the index still answers afterwards
    knowledge_answers.answer(("guidelines", "'; DROP TABLE guideline_sections; --"), date.today())
    assert knowledge_answers.answer(("guideline", "I.C.1.d"), date.today()).found


def test_missing_pdf_names_it(tmp_path: Path) -> None:
    with pytest.raises(guidelines.MissingGuidelines, match="Guidelines"):
        guidelines.extract_text(tmp_path / "missing.pdf", tmp_path)
