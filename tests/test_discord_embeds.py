"""Reply -> Discord payload: limits, escaping, components (pure, no network)."""

from __future__ import annotations

import pytest

from adapters.discord_embeds import (
    CHOICE_TEXT_MAX,
    CUSTOM_ID_MAX,
    EMBED_TOTAL_MAX,
    OPEN_SELECT_ID,
    RUN_PREFIX,
    choice_label,
    embeds_size,
    escape_user_text,
    render_reply,
    validate_choices,
    validate_message,
)
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

LONG = "Lorem ipsum dolor sit amet, consectetur adipiscing elit " * 8  # ~450 chars


def huge_card(code: str = "S72") -> CodeCard:
    """A card far beyond every Discord limit: many children, notes and attributes."""
    children = tuple(
        CodeRef(CodeSystem.ICD10CM, f"{code}.{n:03d}", f"Child {n} {LONG}") for n in range(400)
    )
    notes = {
        "excludes1": tuple(f"excluded thing {n} {LONG}" for n in range(60)),
        "excludes2": tuple(f"other {n}" for n in range(60)),
        "seven_chr_def": tuple(f"{c} initial encounter {LONG}" for c in "ABCDEFGHJKMNPQRS"),
    }
    attributes = tuple((f"Attribute {n}", LONG) for n in range(40))
    return CodeCard(
        CodeSystem.ICD10CM,
        code,
        "Fracture of femur " + LONG,
        kind="category",
        billable=False,
        parents=tuple(CodeRef(CodeSystem.ICD10CM, f"P{n}", LONG) for n in range(5)),
        children=children,
        children_total=len(children),
        notes=notes,
        attributes=attributes,
        effective={"release": "FY2026"},
        team_note="@everyone check <@123456789012345678> **bold** " + LONG,
        team_note_author="@here",
    )


def test_single_huge_card_fits_every_limit() -> None:
    message = render_reply(Reply(ReplyKind.CARDS, items=(huge_card(),), notice="5 left"))
    payload = message.to_payload()
    assert validate_message(payload) == []
    embed = payload["embeds"][0]
    assert embed["title"].startswith("S72")
    assert embed["footer"]["text"] == "5 left"
    children = next(f for f in embed["fields"] if f["name"].startswith("Children"))
    assert "400" in children["name"] and "more" in children["value"]


def test_ten_huge_cards_share_the_6000_total() -> None:
    cards = tuple(huge_card(f"S7{n}") for n in range(12))
    payload = render_reply(Reply(ReplyKind.CARDS, items=cards, notice="n")).to_payload()
    assert validate_message(payload) == []
    assert len(payload["embeds"]) == 10
    assert embeds_size(payload["embeds"]) <= EMBED_TOTAL_MAX
    assert "10 of 12" in payload["content"]


def test_user_text_is_neutralised() -> None:
    payload = render_reply(Reply(ReplyKind.CARDS, items=(huge_card(),))).to_payload()
    note = next(f for f in payload["embeds"][0]["fields"] if f["name"] == "Team note")["value"]
    assert "@everyone" not in note and "@\u200beveryone" in note
    assert "<@123456789012345678>" not in note
    assert "\\*\\*bold\\*\\*" in note
    assert payload["allowed_mentions"]["parse"] == []


@pytest.mark.parametrize(
    ("raw", "absent"),
    [
        ("@everyone", "@everyone"),
        ("@here now", "@here"),
        ("<@!123456789012345678>", "<@!123456789012345678>"),
        ("<@&123456789012345678>", "<@&123456789012345678>"),
        ("# heading", "\n# "),
    ],
)
def test_escape_user_text(raw: str, absent: str) -> None:
    assert absent not in "\n" + escape_user_text(raw)


def test_search_select_limits() -> None:
    hits = tuple(
        SearchHit(CodeSystem.HCPCS, f"L{1800 + n}", "Knee orthosis " + LONG, 1.0) for n in range(40)
    )
    actions = tuple(Action("show", h.code, h.code) for h in hits)
    message = render_reply(
        Reply(ReplyKind.SEARCH, items=hits, text="@everyone knee", actions=actions, notice="x")
    )
    payload = message.to_payload()
    assert validate_message(payload) == []
    select = payload["components"][0]["components"][0]
    assert select["custom_id"] == OPEN_SELECT_ID
    assert len(select["options"]) == 25
    assert "@everyone" not in payload["embeds"][0]["title"]


def test_share_buttons_and_overlong_custom_id() -> None:
    card = CodeCard(CodeSystem.ICD10CM, "E11.9", "Type 2 diabetes mellitus without complications")
    actions = (
        Action("share", "share E11.9", "Share E11.9"),
        Action("share", "share " + "X" * 200, "Share " + "X" * 200),
    )
    message = render_reply(Reply(ReplyKind.CARDS, items=(card,), actions=actions))
    payload = message.to_payload()
    assert validate_message(payload) == []
    buttons = [c for row in payload["components"] for c in row["components"]]
    assert [b["custom_id"] for b in buttons] == [RUN_PREFIX + "share E11.9"]
    assert payload["flags"] == 64


def test_public_reply_is_not_ephemeral() -> None:
    card = CodeCard(CodeSystem.ICD10CM, "E11.9", "Type 2 diabetes")
    payload = render_reply(Reply(ReplyKind.CARDS, items=(card,), public=True)).to_payload()
    assert "flags" not in payload


@pytest.mark.parametrize(
    "kind", [ReplyKind.INFO, ReplyKind.EXHAUSTED, ReplyKind.INVALID, ReplyKind.ERROR]
)
def test_text_replies(kind: ReplyKind) -> None:
    payload = render_reply(Reply(kind, text="x" * 9000 + " @everyone", notice="n")).to_payload()
    assert validate_message(payload) == []


def test_not_found_and_cpt() -> None:
    items = (
        NotFound(
            "E11.99",
            "E11.99 is not a valid code.",
            (CodeRef(CodeSystem.ICD10CM, "E11.9", "Type 2"),),
        ),
        CptInfo("99213", "Evaluation and Management", "99202–99499"),
    )
    payload = render_reply(Reply(ReplyKind.CARDS, items=items)).to_payload()
    assert validate_message(payload) == []
    assert "AMA" in payload["embeds"][1]["description"]


def test_choice_label_is_cut() -> None:
    label = choice_label(CodeRef(CodeSystem.ICD10CM, "E11.9", "Type 2 " * 40))
    assert len(label) <= CHOICE_TEXT_MAX and label.startswith("E11.9 — Type 2")
    assert validate_choices([{"name": label, "value": "E11.9"}]) == []
    assert validate_choices([{"name": "x", "value": "v"}] * 26)


def test_validate_message_finds_problems() -> None:
    bad = {
        "content": "@everyone",
        "allowed_mentions": {"parse": ["everyone"]},
        "embeds": [
            {
                "title": "t" * 300,
                "description": "d" * 5000,
                "fields": [{"name": "n", "value": "v" * 2000}] * 30,
            }
        ]
        * 11,
        "components": [
            {
                "type": 1,
                "components": [
                    {"type": 2, "label": "l" * 90, "custom_id": "c" * (CUSTOM_ID_MAX + 1)}
                ]
                * 6,
            }
        ]
        * 6,
    }
    problems = " | ".join(validate_message(bad))
    for expected in (
        "mass mention",
        "allowed_mentions",
        "11 embeds",
        "title",
        "description",
        "30 fields",
        "field 0 value",
        "total",
        "action rows",
        "custom_id",
        "button label",
    ):
        assert expected in problems
