"""Lists label what each code is (issue 9, item 11): a terminated code "terminated", a
modifier "modifier", and only a real header "(header)" (children, search hits, suggestions)."""

from __future__ import annotations

from pathlib import Path

from bot.app import open_code_data
from bot.codes.catalog import CodeCatalog
from bot.config import Settings
from bot.model import CodeSystem, Reply, ReplyKind
from bot.render import render_text


def search(codes_db_path: Path, query: str, system: CodeSystem) -> Reply:
    _, engine = open_code_data(Settings(codes_db=codes_db_path))
    hits = engine.search(query, system=system, limit=10)
    return Reply(ReplyKind.SEARCH, items=tuple(hits), text=query)


def test_terminated_and_modifier_hits_are_labelled(
    catalog: CodeCatalog, codes_db_path: Path
) -> None:
    (dead,) = catalog.lookup("S0189")
    assert dead.status == "terminated"
    reply = search(codes_db_path, dead.title, CodeSystem.HCPCS)
    line = next(x for x in render_text(reply).splitlines() if " S0189 " in f" {x} ")
    assert "(terminated)" in line and "(header)" not in line
    (left,) = [c for c in catalog.lookup("LT") if c.kind == "modifier"]
    reply = search(codes_db_path, left.title, CodeSystem.HCPCS)
    line = next(x for x in render_text(reply).splitlines() if " LT " in f" {x} ")
    assert "(modifier)" in line and "(header)" not in line


def test_only_real_headers_are_headers(catalog: CodeCatalog) -> None:
    from bot.render import render_card

    (e11,) = [c for c in catalog.lookup("E11") if c.system is CodeSystem.ICD10CM]
    text = render_card(e11, full=True)
    for child in e11.children:
        line = next(x for x in text.splitlines() if x.strip().startswith(child.code + " "))
        assert ("(header)" in line) == (not child.billable and child.kind == "subcategory")
