"""Slack: a user-chosen name shown in `/code recent` and `admin usage` cannot become a link,
a mention or a channel ping (issue 12, item 13, Slack side). Real bolt + aiohttp, signed.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from tests.fakes.fake_slack import FakeSlack
from tests.fakes.slack_harness import UNLIMITED_QUOTA, running_slack, slack_settings

FORM = "application/x-www-form-urlencoded"
HOSTILE_NAME = "<https://evil.example/x|free lookups> <!channel> <@U0BOSS>"


async def test_hostile_user_names_are_escaped(tmp_path: Path, codes_db_path: Path) -> None:
    async with FakeSlack(admins=("U0001",)) as fake:
        settings = slack_settings(fake, tmp_path, codes_db_path, quota=UNLIMITED_QUOTA)
        async with running_slack(fake, settings) as slack:
            form = slack.sender.command_payload("E11.9")
            form["user_name"] = HOSTILE_NAME
            assert (await slack.sender.post(urlencode(form), FORM)).status == 200
            recent, _ = await slack.sender.command("recent")
            usage, _ = await slack.sender.command("admin usage")
        assert fake.violations == []
    for sent in (recent, usage):
        text = json.dumps(sent.json()["blocks"], ensure_ascii=False)
        assert "&lt;https://evil.example/x|free lookups&gt;" in text, text
        for live in ("<https://", "<!channel>", "<@U0BOSS>"):
            assert live not in text
