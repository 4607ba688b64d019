"""An answer goes only to Slack's own response_url origin (issue 12, item 12).

With `SLACK_API_URL` set, only that URL's exact scheme, host and port is trusted, besides
`https://hooks.slack.com`. A second fake Slack on the same host but another port plays the
attacker: a correctly signed command whose response_url points there gets no answer there.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from adapters.slack_urls import trusted_response_url
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.slack_harness import UNLIMITED_QUOTA, headers_of, running_slack, slack_settings

FORM = "application/x-www-form-urlencoded"


async def test_response_url_on_another_port_of_the_api_host_is_refused(
    tmp_path: Path, codes_db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeSlack() as fake, FakeSlack() as attacker:
        ours, theirs = urlsplit(fake.api_url), urlsplit(attacker.response_url())
        assert (ours.hostname, ours.scheme) == (theirs.hostname, theirs.scheme)
        assert ours.port != theirs.port
        settings = slack_settings(fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA)
        # ack budget 0: every answer goes through response_url
        async with running_slack(fake, settings, ack_budget=0.0) as slack:
            form = slack.sender.command_payload("E11.9")
            form["response_url"] = attacker.response_url()
            sent = await slack.sender.post(urlencode(form), FORM)
            assert sent.status == 200
            # the same command with Slack's own response_url is answered, after the other
            await slack.sender.command("I10")
            posts = await fake.wait_for("response_url", 1, timeout=8)
            await fake.settle(0.3)
            assert [headers_of(p.args) for p in fake.of("response_url")] == [["I10 · ICD-10-CM"]]
            assert posts
        assert attacker.calls == []
        assert any("refusing a response_url" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("url", "api_url", "trusted"),
    [
        ("https://hooks.slack.com/commands/T1/1/x", "", True),
        ("https://HOOKS.slack.com/commands/T1/1/x", "", True),
        ("https://hooks.slack.com:443/commands/T1/1/x", "", True),
        ("http://hooks.slack.com/commands/T1/1/x", "", False),
        ("https://hooks.slack.com:8443/commands/T1/1/x", "", False),
        ("https://hooks.slack.com@evil.example/x", "", False),
        ("https://evil.example@hooks.slack.com/x", "", False),
        ("https://hooks.slack.com.evil.example/x", "", False),
        ("https://hooks.slack.com:notaport/x", "", False),
        ("ftp://hooks.slack.com/x", "", False),
        ("", "", False),
        ("http://127.0.0.1:4000/hooks/1", "", False),
        ("http://127.0.0.1:4000/hooks/1", "http://127.0.0.1:4000/api/", True),
        ("http://127.0.0.1:4001/hooks/1", "http://127.0.0.1:4000/api/", False),
        ("https://127.0.0.1:4000/hooks/1", "http://127.0.0.1:4000/api/", False),
        ("http://localhost:4000/hooks/1", "http://127.0.0.1:4000/api/", False),
        ("http://proxy.example/hooks/1", "http://proxy.example:80/api/", True),
        ("https://hooks.slack.com/commands/T1/1/x", "http://127.0.0.1:4000/api/", True),
    ],
)
def test_trusted_response_url(url: str, api_url: str, trusted: bool) -> None:
    assert trusted_response_url(url, api_url) is trusted
