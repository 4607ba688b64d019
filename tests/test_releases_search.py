"""Search and autocomplete use the release in force; `codebot changes --json` and `history`."""

from __future__ import annotations

import gzip
import json
import re
from datetime import date
from pathlib import Path

import pytest

from bot.cli import main
from bot.codes.catalog import CodeCatalog
from bot.codes.search import SearchEngine
from bot.codes.sources import DATA_DIR
from bot.model import CodeSystem, SearchHit
from bot.search_validity import valid_first

ORDER_2027 = DATA_DIR / "icd10cm" / "icd10cm_order_2027.txt.gz"
ADDENDA_2027 = DATA_DIR / "icd10cm" / "icd10cm_order_addenda_2027.txt.gz"


def deleted_in_fy2027() -> list[str]:
    """Billable FY2026 codes that the FY2027 addenda delete and do not add back."""
    text = gzip.decompress(ADDENDA_2027.read_bytes()).decode("ascii")
    deleted = {line[15:22].strip() for line in text.splitlines() if line.startswith("Delete:")}
    added = {line[15:22].strip() for line in text.splitlines() if line.startswith("Add:")}
    return sorted(deleted - added)


def test_deleted_codes_never_outrank_valid_ones(catalog: CodeCatalog) -> None:
    gone = deleted_in_fy2027()[0]
    gone_code = catalog.lookup(gone)[0].code
    hits = [
        SearchHit(CodeSystem.ICD10CM, gone_code, "deleted", 9.0),
        SearchHit(CodeSystem.ICD10CM, "E11.9", "valid", 1.0),
    ]
    today = valid_first(hits, date(2026, 12, 1), catalog.valid_on, 10)
    assert [h.code for h in today] == ["E11.9", gone_code]
    assert "not valid on 2026-12-01" in today[1].title and not today[1].billable
    back_then = valid_first(hits, date(2026, 9, 30), catalog.valid_on, 10)
    assert [h.code for h in back_then] == [gone_code, "E11.9"]


def test_search_results_as_of_a_date(catalog: CodeCatalog, codes_db_path: Path) -> None:
    engine = SearchEngine.open(codes_db_path)
    try:
        card = catalog.lookup(deleted_in_fy2027()[0])[0]
        raw = engine.search(card.title, limit=20)
        ranked = valid_first(raw, date(2026, 12, 1), catalog.valid_on, 10)
        codes = [h.code for h in ranked]
        if card.code in codes:
            position = codes.index(card.code)
            assert all("not valid" not in h.title for h in ranked[:position])
        autocomplete = valid_first(
            engine.autocomplete(card.code[:5], limit=25), date(2026, 12, 1), catalog.valid_on, 25
        )
        flags = ["not valid" in r.title for r in autocomplete]
        assert flags == sorted(flags)  # every valid suggestion before any invalid one
    finally:
        engine.close()


def test_cli_changes_json_and_history(
    codes_db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEBOT_CODES_DB", str(codes_db_path))
    monkeypatch.setenv("CODEBOT_TODAY", "2026-12-01")
    assert main(["changes", "icd10cm", "FY2027", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    text = gzip.decompress(ADDENDA_2027.read_bytes()).decode("ascii")
    tail = text[text.rindex("Codes") :]
    for kind, word in (("added", "additions"), ("deleted", "deletions"), ("revised", "revisions")):
        expected = int(re.search(rf"(\d+) {word}", tail).group(1))  # type: ignore[union-attr]
        assert out["counts"][kind] == expected
        assert sum(1 for c in out["changes"] if c["change"] == kind) == expected
    assert out["release"] == "FY2027" and out["previous"] == "FY2026"
    assert main(["changes", "pcs", "--date", "2026-05-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["release"] == "FY2026-04"
    assert main(["changes", "hcpcs", "1999"]) == 2
    capsys.readouterr()
    assert main(["history", "Z87.890"]) == 0
    history = capsys.readouterr().out
    assert "FY2027" in history and "Z87.8901" in history
    assert main(["lookup", "E11.A", "--date", "2025-03-01", "--json"]) == 0
    (card,) = json.loads(capsys.readouterr().out)
    assert card["status"] == "not_yet_valid"
    with gzip.open(ORDER_2027, "rt") as handle:
        assert any(line[6:13].strip() == "E11A" for line in handle)
