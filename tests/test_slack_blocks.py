"""Unit tests of Reply -> Block Kit: layout, escaping, and Slack's limits (validate_blocks)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from adapters.slack_app import api_base_url, tenant_of, unescape_slack
from adapters.slack_blocks import (
    BlockKitError,
    block_kit_problems,
    escape,
    reply_to_message,
    validate_blocks,
)
from bot.codes.catalog import CodeCatalog
from bot.model import (
    Action,
    CodeCard,
    CodeRef,
    CodeSystem,
    CptInfo,
    NotFound,
    Reply,
    ReplyKind,
    SearchHit,
)


def card(code: str = "E11.9", **changes: Any) -> CodeCard:
    """A synthetic card; `changes` override fields."""
    fields: dict[str, Any] = {
        "system": CodeSystem.ICD10CM,
        "code": code,
        "title": "Type 2 diabetes mellitus without complications",
        "billable": True,
    }
    fields.update(changes)
    return CodeCard(**fields)


def kinds(message: dict[str, Any]) -> list[str]:
    return [block["type"] for block in message["blocks"]]


def test_escape_neutralises_slack_control_syntax() -> None:
    assert escape("a < b & c > d") == "a &lt; b &amp; c &gt; d"
    assert "<!channel>" not in escape("<!channel>")
    assert escape("@channel @HERE @everyone").count("@\u200b") == 3
    assert escape("mail me@example.com") == "mail me@example.com"


def test_unescape_slack_input() -> None:
    assert unescape_slack("&lt;!channel&gt; a &amp;lt; b") == "<!channel> a &lt; b"


def test_tenant_and_api_url() -> None:
    assert tenant_of("T1", None) == "T1"
    assert tenant_of("T1", "E1") == "E1:T1"
    assert api_base_url("http://127.0.0.1:9/api") == "http://127.0.0.1:9/api/"
    assert api_base_url("") == "https://slack.com/api/"


def test_card_layout() -> None:
    reply = Reply(
        ReplyKind.CARDS,
        items=(
            card(
                parents=(CodeRef(CodeSystem.ICD10CM, "E11", "Type 2 diabetes mellitus"),),
                notes={"excludes1": ("diabetes mellitus due to underlying condition (E08.-)",)},
                effective={"release": "FY2026"},
                team_note="Check A1c",
                team_note_author="alice",
            ),
        ),
        notice="5 code lookups remaining (registered plan).",
        actions=(Action("share", "share E11.9", "Share E11.9"),),
    )
    message = reply_to_message(reply)
    validate_blocks(message)
    assert kinds(message)[0] == "header"
    assert message["blocks"][0]["text"]["text"] == "E11.9 · ICD-10-CM"
    text = json.dumps(message)
    for expected in ("Billable", "Excludes1", "FY2026", "Team note", "alice", "Check A1c"):
        assert expected in text
    assert message["blocks"][-2]["type"] == "context"
    assert "5 code lookups remaining" in json.dumps(message["blocks"][-2])
    assert message["blocks"][-1]["elements"][0]["value"] == "share E11.9"
    assert "E11.9" in message["text"]


def test_long_children_and_notes_are_cut() -> None:
    children = tuple(
        CodeRef(CodeSystem.ICD10PCS, f"0DT{i:04d}", "Resection of something " * 8, True)
        for i in range(500)
    )
    notes = {
        f"note_type_{n}": tuple("a very long inclusion term " * 20 for _ in range(40))
        for n in range(30)
    }
    big = card(
        "0DT",
        kind="table",
        billable=False,
        children=children,
        children_total=1200,
        notes=notes,
        attributes=tuple((f"Axis {i}", "x" * 3000) for i in range(30)),
        team_note="n" * 5000,
    )
    message = reply_to_message(Reply(ReplyKind.CARDS, items=(big,)))
    validate_blocks(message)
    text = json.dumps(message, ensure_ascii=False)
    assert re.search(r"… and 11\d\d more", text)
    assert "more notes" in text


def test_ten_full_cards_fit_fifty_blocks() -> None:
    refs = tuple(CodeRef(CodeSystem.ICD10CM, f"S72.{i}", "Fracture", False) for i in range(9))
    items = tuple(
        card(
            f"S72.{i}",
            children=refs,
            parents=refs[:3],
            notes={"excludes2": ("x",)},
            effective={"release": "FY2026"},
            team_note="t",
        )
        for i in range(10)
    )
    actions = tuple(Action("share", f"share S72.{i}", f"Share S72.{i}") for i in range(10))
    message = reply_to_message(Reply(ReplyKind.CARDS, items=items, notice="n", actions=actions))
    validate_blocks(message)
    assert len(message["blocks"]) <= 50
    text = json.dumps(message)
    assert all(f"S72.{i}" in text for i in range(10))  # every card is shown, some compactly


def test_search_reply_numbered_with_show_buttons() -> None:
    hits = tuple(
        SearchHit(CodeSystem.HCPCS, f"L{1800 + i}", f"Knee orthosis {i}", 1.0 - i / 10)
        for i in range(10)
    )
    actions = tuple(Action("show", hit.code, hit.code) for hit in hits)
    reply = Reply(
        ReplyKind.SEARCH,
        items=hits,
        text="knee brace",
        actions=actions,
        notice="1 left",
        title="Codes matching “knee brace”",
    )
    message = reply_to_message(reply)
    validate_blocks(message)
    sections = [b for b in message["blocks"] if b.get("accessory")]
    assert len(sections) == 10
    assert sections[0]["text"]["text"].startswith("1. *L1800*")
    assert sections[0]["accessory"]["value"] == "L1800"
    assert sections[0]["accessory"]["text"]["text"] == "Show"


def test_empty_search_and_text_kinds() -> None:
    empty = reply_to_message(Reply(ReplyKind.SEARCH, text="<!channel> zzz"))
    validate_blocks(empty)
    assert "No codes match" in empty["text"]
    long_text = "\n".join(f"line {i} " + "x" * 200 for i in range(2000))
    for kind in (ReplyKind.INFO, ReplyKind.EXHAUSTED, ReplyKind.INVALID, ReplyKind.ERROR):
        message = reply_to_message(Reply(kind, text=long_text, notice="quota"))
        validate_blocks(message)
        assert len(message["blocks"]) <= 50


def test_not_found_and_cpt_items() -> None:
    reply = Reply(
        ReplyKind.CARDS,
        items=(
            NotFound(
                "E11.99",
                "E11.99 is not a valid code.",
                (CodeRef(CodeSystem.ICD10CM, "E11.9", "Type 2 diabetes", True),),
            ),
            CptInfo("99213", "Evaluation and Management", "99202–99499"),
        ),
    )
    message = reply_to_message(reply)
    validate_blocks(message)
    text = json.dumps(message, ensure_ascii=False)
    assert "Did you mean" in text and "E11.9" in text
    assert "CPT® code" in text and "AMA" in text


def test_user_text_never_becomes_a_mention() -> None:
    hostile = "<!channel> <@U123> <#C1|x> <!subteam^S1> @here & <https://evil|click>"
    reply = Reply(
        ReplyKind.CARDS,
        items=(card(team_note=hostile, team_note_author=hostile),),
        notice=hostile,
    )
    for message in (
        reply_to_message(reply),
        reply_to_message(Reply(ReplyKind.INFO, text=hostile)),
        reply_to_message(Reply(ReplyKind.SEARCH, text=hostile, title=hostile)),
    ):
        assert block_kit_problems(message) == []
        assert "<" not in json.dumps(message).replace("\\u003c", "<")


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"blocks": []}, "fallback text"),
        ({"text": "t", "blocks": [{"type": "divider"}] * 51}, "51 blocks"),
        (
            {
                "text": "t",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            },
            "max 150",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}],
            },
            "max 3000",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            },
            "fields",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
            },
            "max 2000",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
            },
            "1..10",
        ),
        (
            {
                "text": "t",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "b" * 76},
                                "action_id": "a",
                                "value": "v",
                            }
                        ],
                    }
                ],
            },
            "max 75",
        ),
        (
            {
                "text": "t",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "b"},
                                "action_id": "a" * 256,
                                "value": "v",
                            }
                        ],
                    }
                ],
            },
            "action_id",
        ),
        (
            {
                "text": "t",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "b"},
                                "action_id": "a",
                                "value": "v" * 2001,
                            }
                        ],
                    }
                ],
            },
            "value",
        ),
        (
            {
                "text": "t",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "b"},
                                "action_id": "a",
                                "value": "v",
                            }
                        ]
                        * 2,
                    }
                ],
            },
            "not unique",
        ),
        ({"text": "hi <!channel>"}, "live mention"),
        ({"text": "hi @here"}, "mass mention"),
    ],
)
def test_validator_catches_each_limit(payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(BlockKitError) as caught:
        validate_blocks(payload)
    assert problem in str(caught.value)


@pytest.mark.parametrize("code", ["041", "047", "3E0", "V00-V99", "Y93", "S72", "0DT", "E11"])
def test_real_large_cards_fit(catalog: CodeCatalog, code: str) -> None:
    cards = catalog.lookup(code)
    assert cards, code
    reply = Reply(
        ReplyKind.CARDS,
        items=tuple(cards),
        actions=(Action("share", f"share {code}", f"Share {code}"),),
    )
    message = reply_to_message(reply)
    validate_blocks(message)
    total = max(c.children_total for c in cards)
    if total > 15:
        assert "more" in json.dumps(message)
