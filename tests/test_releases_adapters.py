"""The Full list button of `/code changes …` and the history line, on Slack and Discord."""

from __future__ import annotations

from datetime import date

from adapters.discord_embeds import RUN_PREFIX, render_reply, validate_message
from adapters.slack_blocks import block_kit_problems, reply_to_message
from bot.codes.catalog import CodeCatalog
from bot.commands import parse
from bot.model import CodeCard, Reply, ReplyKind
from bot.release_replies import changes_answer


def changes_reply(catalog: CodeCatalog) -> Reply:
    answer = changes_answer(catalog, parse("/code changes icd10cm FY2027"), date(2026, 12, 1))
    assert answer.found
    return Reply(ReplyKind.INFO, text=answer.text, actions=answer.actions, title=answer.title)


def test_slack_full_list_button_runs_the_full_command(catalog: CodeCatalog) -> None:
    reply = changes_reply(catalog)
    payload = reply_to_message(reply)
    assert block_kit_problems(payload) == []
    buttons = [
        element
        for block in payload["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert [b["text"]["text"] for b in buttons] == ["Full list"]
    assert parse(buttons[0]["value"]).args[-1] == "FULL"


def test_discord_full_list_button_runs_the_full_command(catalog: CodeCatalog) -> None:
    message = render_reply(changes_reply(catalog))
    payload = message.to_payload()
    assert validate_message(payload) == []
    (button,) = [spec for spec in message.buttons]
    assert button.custom_id.startswith(RUN_PREFIX)
    assert parse(button.custom_id[len(RUN_PREFIX) :]).args == ("FY2027", "FULL")


def test_cards_show_their_history_on_both_platforms(catalog: CodeCatalog) -> None:
    (card,) = [c for c in catalog.lookup("D69.1", date(2026, 12, 1)) if isinstance(c, CodeCard)]
    reply = Reply(ReplyKind.CARDS, items=(card,), title="D69.1")
    slack = reply_to_message(reply)
    assert block_kit_problems(slack) == []
    assert "billable until FY2026" in str(slack["blocks"])
    discord = render_reply(reply).to_payload()
    assert validate_message(discord) == []
    assert "billable until FY2026" in str(discord)
