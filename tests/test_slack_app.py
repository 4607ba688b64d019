"""End-to-end tests of the Slack adapter: real bolt app + aiohttp server on 127.0.0.1:0,
requests signed exactly as Slack signs them, a fake Slack Web API recording what the app
sends. Every Block Kit payload (ack bodies, response_url posts, chat.* calls) is checked
against Slack's limits by `validate_blocks`; each test ends by asserting no violations.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_slack import ApiCall, FakeSlack
from tests.fakes.slack_harness import (
    UNLIMITED_QUOTA,
    SlackHarness,
    buttons_of,
    headers_of,
    running_slack,
    slack_settings,
)

ADMIN = "UADMIN01"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    """A fresh fake Slack per test; fails the test if any payload broke Block Kit limits."""
    async with FakeSlack(admins=(ADMIN,)) as slack:
        yield slack
        assert slack.violations == [], slack.violations


@pytest.fixture
async def slack(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> AsyncIterator[SlackHarness]:
    """The adapter with an unlimited quota (so tests about behaviour never hit the quota)."""
    settings = slack_settings(fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA)
    async with running_slack(fake, settings) as harness:
        yield harness


@pytest.fixture
async def guest(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> AsyncIterator[SlackHarness]:
    """The adapter with the default plans: a guest has exactly one lookup."""
    settings = slack_settings(fake, tmp_path, codes_db_path)
    async with running_slack(fake, settings) as harness:
        yield harness


def all_text(payload: dict[str, Any]) -> str:
    """Every string of a payload, joined, for content assertions."""
    return json.dumps(payload, ensure_ascii=False)


# ---------------------------------------------------------------- verification


async def test_healthz(slack: SlackHarness) -> None:
    async with slack.sender.session.get(slack.url.replace("/slack/events", "/healthz")) as r:
        assert r.status == 200
        assert (await r.json())["ok"] is True


async def test_url_verification_answers_the_challenge(slack: SlackHarness) -> None:
    challenge = {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"}
    body = json.dumps(challenge)
    sent = await slack.sender.post(body, "application/json")
    assert sent.status == 200
    assert "3eZbrw1aBm2rZgRNFdxV" in sent.text


async def test_bad_signature_is_401_and_runs_nothing(guest: SlackHarness) -> None:
    sent, _ = await guest.sender.command("E11.9", secret="not-the-secret")
    assert sent.status == 401
    event = guest.sender.mention("E11.9")
    assert (await guest.sender.event(event, secret="not-the-secret")).status == 401
    await guest.fake.settle(0.2)
    assert guest.service.requests == []
    assert guest.fake.messages() == []
    # nothing was charged: the guest's single lookup is still there
    ok, _ = await guest.sender.command("E11.9")
    assert headers_of(ok.json()) == ["E11.9 · ICD-10-CM"]


async def test_stale_timestamp_is_401(guest: SlackHarness) -> None:
    sent, _ = await guest.sender.command("E11.9", timestamp=int(time.time()) - 6 * 60)
    assert sent.status == 401
    future, _ = await guest.sender.command("E11.9", timestamp=int(time.time()) + 6 * 60)
    assert future.status == 401
    assert guest.service.requests == []
    ok, _ = await guest.sender.command("E11.9")
    assert headers_of(ok.json()) == ["E11.9 · ICD-10-CM"]


# ---------------------------------------------------------------- slash command


async def test_slash_lookup_answers_in_the_ack(slack: SlackHarness) -> None:
    sent, _ = await slack.sender.command("e119")
    assert sent.status == 200
    payload = sent.json()
    assert payload["response_type"] == "ephemeral"
    assert headers_of(payload) == ["E11.9 · ICD-10-CM"]
    text = all_text(payload)
    assert "Type 2 diabetes mellitus without complications" in text
    assert "Billable" in text
    assert "E11.9" in payload["text"]  # fallback text is always there
    share = [b for b in buttons_of(payload) if b["action_id"].startswith("codebot_share")]
    assert [b["value"] for b in share] == ["share E11.9"]
    # the quota notice is a context block
    assert any(
        b["type"] == "context" and "unlimited" in all_text(b).lower() for b in payload["blocks"]
    )
    request = slack.service.requests[0]
    assert request.user.platform == "slack"
    assert request.user.tenant_id == "T0001"
    assert request.user.user_id == "U0001"
    assert request.request_id.startswith("slack:cmd:")
    assert slack.fake.messages() == []  # nothing else was posted


async def test_slow_answer_goes_through_response_url(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> None:
    settings = slack_settings(fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA)
    async with running_slack(fake, settings, ack_budget=0.05, delay=0.3) as slow:
        started = time.monotonic()
        sent, response_url = await slow.sender.command("E11.9")
        assert time.monotonic() - started < 0.3  # acked before the answer was ready
        assert sent.status == 200
        assert sent.text.strip() in ("", "{}") or "blocks" not in sent.json()
        posts = await fake.wait_for("response_url")
        assert response_url.endswith("/" + posts[0].hook)
        assert posts[0].args["response_type"] == "ephemeral"
        assert headers_of(posts[0].args) == ["E11.9 · ICD-10-CM"]


async def test_several_codes(slack: SlackHarness) -> None:
    sent, _ = await slack.sender.command("E11.9 I10 A0425")
    payload = sent.json()
    assert headers_of(payload) == [
        "E11.9 · ICD-10-CM",
        "I10 · ICD-10-CM",
        "A0425 · HCPCS Level II",
    ]
    values = [b["value"] for b in buttons_of(payload)]
    assert values == [
        "share E11.9",
        "share I10",
        "share A0425",
        "full E11.9",
        "full I10",
        "full A0425",
    ]


async def test_search_lists_hits_with_show_buttons(slack: SlackHarness) -> None:
    sent, _ = await slack.sender.command("search icd10cm type 2 diabetes")
    payload = sent.json()
    shows = [b for b in buttons_of(payload) if b["action_id"].startswith("codebot_show")]
    assert shows, "a search listing offers a Show button per hit"
    assert len(shows) <= 10
    assert "1. *" in all_text(payload)
    assert all(b["text"]["text"] == "Show" for b in shows)


async def test_share_posts_in_channel(slack: SlackHarness) -> None:
    sent, _ = await slack.sender.command("share E11.9")
    payload = sent.json()
    assert payload["response_type"] == "in_channel"
    assert headers_of(payload) == ["E11.9 · ICD-10-CM"]
    assert not [b for b in buttons_of(payload) if b["action_id"].startswith("codebot_share")]


async def test_help_is_answered(slack: SlackHarness) -> None:
    sent, _ = await slack.sender.command("")
    assert "/code E11.9" in sent.json()["text"]


async def test_enterprise_tenant(slack: SlackHarness) -> None:
    await slack.sender.command("quota", enterprise_id="E0001")
    assert slack.service.requests[-1].user.tenant_id == "E0001:T0001"


# ---------------------------------------------------------------- buttons


async def test_share_button_posts_in_channel_once(slack: SlackHarness) -> None:
    sent, _ = await slack.sender.command("E11.9")
    button = buttons_of(sent.json())[0]
    ack, _ = await slack.sender.click(button["value"], button["action_id"])
    assert ack.status == 200
    posts = await slack.fake.wait_for("response_url")
    assert posts[0].args["response_type"] == "in_channel"
    assert posts[0].args["replace_original"] is False
    assert headers_of(posts[0].args) == ["E11.9 · ICD-10-CM"]
    # a double click on the same button: not answered (nor charged) again
    again, _ = await slack.sender.click(button["value"], button["action_id"])
    assert again.status == 200
    await slack.fake.settle(0.3)
    assert len(slack.fake.of("response_url")) == 1
    clicks = [r for r in slack.service.requests if r.request_id.startswith("slack:act:")]
    assert len(clicks) == 1


async def test_double_click_is_charged_once(guest: SlackHarness) -> None:
    """Two deliveries of one click (even past the in-process memory) charge one lookup
    and are answered once: the second is the ledger's replay, and nothing is posted."""
    adapter = guest.adapter
    await guest.sender.click("E11.9", "codebot_show_1")
    await guest.fake.wait_for("response_url")
    adapter._clicks = type(adapter._clicks)(10.0)  # forget the click: as if another process
    await guest.sender.click("E11.9", "codebot_show_1")
    await guest.fake.settle()
    posts = guest.fake.of("response_url")
    assert [headers_of(p.args) for p in posts] == [["E11.9 · ICD-10-CM"]]
    # the guest's only lookup was spent once: a new lookup is refused
    refused, _ = await guest.sender.command("I10")
    assert headers_of(refused.json()) == []
    assert "register" in refused.json()["text"].lower()


async def test_show_button_answers_privately(slack: SlackHarness) -> None:
    ack, _ = await slack.sender.click("I10", "codebot_show_3")
    assert ack.status == 200
    posts = await slack.fake.wait_for("response_url")
    assert posts[0].args["response_type"] == "ephemeral"
    assert headers_of(posts[0].args) == ["I10 · ICD-10-CM"]


# ---------------------------------------------------------------- mentions and DMs


async def test_app_mention_answers_in_thread(slack: SlackHarness) -> None:
    event = slack.sender.mention("E11.9", channel="C0777", ts="1700000001.000200")
    sent = await slack.sender.event(event)
    assert sent.status == 200
    posts = await slack.fake.wait_for("chat.postMessage")
    args = posts[0].args
    assert args["channel"] == "C0777"
    assert args["thread_ts"] == "1700000001.000200"
    assert headers_of(args) == ["E11.9 · ICD-10-CM"]
    request = slack.service.requests[0]
    assert request.text == "E11.9"  # the bot mention was stripped
    assert request.request_id.startswith("slack:evt:")


async def test_mention_inside_a_thread_stays_in_that_thread(slack: SlackHarness) -> None:
    event = slack.sender.mention("I10", ts="1700000002.000300", thread_ts="1700000000.000100")
    await slack.sender.event(event)
    posts = await slack.fake.wait_for("chat.postMessage")
    assert posts[0].args["thread_ts"] == "1700000000.000100"


async def test_direct_message_answers_in_the_dm(slack: SlackHarness) -> None:
    await slack.sender.event(slack.sender.direct_message("A0425", channel="D0042"))
    posts = await slack.fake.wait_for("chat.postMessage")
    assert posts[0].args["channel"] == "D0042"
    assert "thread_ts" not in posts[0].args
    assert headers_of(posts[0].args) == ["A0425 · HCPCS Level II"]


async def test_bot_messages_and_subtypes_are_ignored(slack: SlackHarness) -> None:
    sender = slack.sender
    await sender.event(sender.direct_message("E11.9", bot_id="B0001"))
    await sender.event(sender.direct_message("E11.9", subtype="message_changed"))
    await sender.event(sender.direct_message("E11.9", subtype="channel_join"))
    await sender.event(sender.direct_message("E11.9", user=slack.fake.bot_user_id))
    channel_message = sender.direct_message("E11.9", channel="C0001")
    channel_message["channel_type"] = "channel"
    await sender.event(channel_message)
    await slack.fake.settle(0.3)
    assert slack.fake.of("chat.postMessage") == []
    assert slack.service.requests == []


async def test_event_retry_is_neither_posted_nor_charged_twice(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> None:
    quota = {"plans": {"guest": {"limit": 2, "period": "lifetime"}}}
    settings = slack_settings(fake, tmp_path, codes_db_path, quota=quota)
    async with running_slack(fake, settings) as one, running_slack(fake, settings) as two:
        event = one.sender.mention("E11.9", ts="1700000003.000100")
        await one.sender.event(event, event_id="Ev0RETRY")
        await fake.wait_for("chat.postMessage")
        # Slack retries the same event (same event_id) to this process…
        assert (await one.sender.event(event, event_id="Ev0RETRY", retry_num=1)).status == 200
        await fake.settle(0.3)
        assert len(fake.of("chat.postMessage")) == 1
        # …and to another process sharing the database: it is neither charged nor posted
        # (the service reports the request id as replayed; process one answered it)
        await two.sender.event(event, event_id="Ev0RETRY", retry_num=2)
        for _ in range(100):
            if two.service.requests:
                break
            await asyncio.sleep(0.05)
        assert [r.request_id for r in two.service.requests] == ["slack:evt:Ev0RETRY"]
        await fake.settle(0.3)
        assert len(fake.of("chat.postMessage")) == 1
        # one lookup spent of two: the next one is still allowed
        sent, _ = await one.sender.command("I10")
        assert headers_of(sent.json()) == ["I10 · ICD-10-CM"]
        refused, _ = await one.sender.command("A0425")
        assert headers_of(refused.json()) == []


# ---------------------------------------------------------------- quota and admin


async def test_quota_exhausted_reply(guest: SlackHarness) -> None:
    first, _ = await guest.sender.command("E11.9")
    assert headers_of(first.json()) == ["E11.9 · ICD-10-CM"]
    second, _ = await guest.sender.command("I10")
    payload = second.json()
    assert headers_of(payload) == []
    assert "I10" not in all_text(payload).replace("/code I10", "")  # no code content
    assert "/code register" in all_text(payload)


async def test_admin_flag_from_users_info_is_cached(slack: SlackHarness) -> None:
    await slack.sender.command("admin usage", user=ADMIN)
    await slack.sender.command("note E11.9 delete", user=ADMIN)
    await slack.sender.command("admin usage", user="U0002")
    admin, again, plain = slack.service.requests
    assert admin.is_admin and again.is_admin
    assert not plain.is_admin
    calls = [c.args.get("user") for c in slack.fake.of("users.info")]
    assert calls.count(ADMIN) == 1  # cached


async def test_lookups_do_not_call_users_info(slack: SlackHarness) -> None:
    """Only admin commands and note edits need the admin flag: lookups skip users.info."""
    await slack.sender.command("E11.9", user="U0003")
    await slack.sender.command("knee brace", user="U0003")
    assert [request.is_admin for request in slack.service.requests] == [False, False]
    assert slack.fake.of("users.info") == []


# ---------------------------------------------------------------- escaping


def assert_no_live_mentions(payload: dict[str, Any]) -> None:
    """No mention/link syntax and no bare mass mention anywhere in a payload."""
    text = all_text(payload)
    for needle in ("<!channel>", "<!here>", "<!everyone>", "<@U", "<#C", "<!subteam"):
        assert needle not in text
    for bare in ("@channel", "@here", "@everyone"):
        assert bare not in text


async def test_mention_injection_is_escaped(slack: SlackHarness) -> None:
    sent, _ = await slack.sender.command("<!channel> E11.9")
    assert headers_of(sent.json()) == ["E11.9 · ICD-10-CM"]
    assert_no_live_mentions(sent.json())

    hostile = "note E11.9 <!here> hi <@U999> &lt;!channel&gt; @channel a<b"
    note, _ = await slack.sender.command(hostile)
    assert_no_live_mentions(note.json())
    card, _ = await slack.sender.command("E11.9")
    payload = card.json()
    assert_no_live_mentions(payload)
    team_note = [b for b in payload["blocks"] if "Team note" in all_text(b)]
    assert team_note, "the team note is shown on the card"
    assert "a&lt;b" in all_text(team_note[0])

    event = slack.sender.mention("<!everyone> E11.9 &lt;!here&gt;")
    await slack.sender.event(event)
    posts = await slack.fake.wait_for("chat.postMessage")
    assert_no_live_mentions(posts[0].args)

    search, _ = await slack.sender.command("knee & <b>brace</b> <!channel>")
    assert_no_live_mentions(search.json())


# ---------------------------------------------------------------- Block Kit limits


@pytest.mark.parametrize("code", ["S72", "T36", "E11", "Y93", "S72.0"])
async def test_large_answers_stay_within_block_kit_limits(slack: SlackHarness, code: str) -> None:
    sent, _ = await slack.sender.command(code)
    payload = sent.json()
    assert sent.status == 200
    assert len(payload["blocks"]) <= 50
    # validated by the sender; the fixture fails the test on any violation
    if code == "S72":  # 16 seventh-character values, cut
        assert "more" in all_text(payload)


async def test_ten_codes_fit_fifty_blocks(slack: SlackHarness) -> None:
    sent, _ = await slack.sender.command("S72 T36 0DT E11 I10 E11.9 A0425 S72.001A J44 N39.0")
    payload = sent.json()
    assert len(payload["blocks"]) <= 50
    assert "S72" in payload["text"]


# ---------------------------------------------------------------- Web API trouble


async def test_rate_limit_is_retried_once_after_retry_after(slack: SlackHarness) -> None:
    slack.fake.rate_limit("chat.postMessage", retry_after=1)
    started = time.monotonic()
    await slack.sender.event(slack.sender.mention("E11.9"))
    posts = await slack.fake.wait_for("chat.postMessage", 2, timeout=8)
    assert time.monotonic() - started >= 0.9  # waited for Retry-After
    assert headers_of(posts[1].args) == ["E11.9 · ICD-10-CM"]
    await slack.fake.settle(0.2)
    assert len(slack.fake.of("chat.postMessage")) == 2


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel"])
async def test_cannot_post_tells_the_user_privately(slack: SlackHarness, error: str) -> None:
    slack.fake.fail("chat.postMessage", error)
    await slack.sender.event(slack.sender.mention("E11.9", user="U0005", channel="C0404"))
    notices = await slack.fake.wait_for("chat.postEphemeral")
    assert notices[0].args["user"] == "U0005"
    assert notices[0].args["channel"] == "C0404"
    assert error in notices[0].args["text"]
    assert "/invite" in notices[0].args["text"]


async def test_api_down_never_crashes_the_server(slack: SlackHarness) -> None:
    slack.fake.fail("chat.postMessage", "internal_error", times=5)
    slack.fake.fail("chat.postEphemeral", "internal_error", times=5)
    slack.fake.fail("users.info", "ratelimited", times=5)
    await slack.sender.event(slack.sender.mention("E11.9"))
    await slack.fake.wait_for("chat.postMessage")
    await slack.fake.settle(0.2)
    sent, _ = await slack.sender.command("I10")  # still serving
    assert headers_of(sent.json()) == ["I10 · ICD-10-CM"]


async def test_response_url_rate_limit_is_retried(
    fake: FakeSlack, tmp_path: Path, codes_db_path: Path
) -> None:
    settings = slack_settings(fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA)
    async with running_slack(fake, settings, ack_budget=0.0) as slow:
        fake.rate_limit("response_url", retry_after=1)
        await slow.sender.command("E11.9")
        posts = await fake.wait_for("response_url", 2, timeout=8)
        assert headers_of(posts[1].args) == ["E11.9 · ICD-10-CM"]


async def test_concurrent_commands(slack: SlackHarness) -> None:
    results = await asyncio.gather(*(slack.sender.command("E11.9") for _ in range(40)))
    assert all(sent.status == 200 for sent, _ in results)
    assert all(headers_of(sent.json()) == ["E11.9 · ICD-10-CM"] for sent, _ in results)


def test_api_call_records_are_plain_data() -> None:
    call = ApiCall("chat.postMessage", {"channel": "C1"})
    assert call.args["channel"] == "C1"
