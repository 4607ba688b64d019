"""Slack OAuth end to end: the real bolt app installed by several workspaces.

Two replicas of the real aiohttp + bolt app share one state database (as behind a load
balancer). Installers go through `GET /slack/install` (state + browser cookie) and Slack's
callback `GET /slack/oauth_redirect?code=…&state=…`, which trades the one-use code at the
fake's `oauth.v2.access` for a per-workspace `xoxb-…` token. The fake records the token of
every Web API call, so the tests see each workspace answered with its own token.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.oauth.installation_store.models.bot import Bot

from adapters.slack_app import ADAPTER_KEY, SlackAdapter, make_web_app
from adapters.slack_blocks import ACTION_PREFIX
from adapters.slack_oauth import (
    BOT_SCOPES,
    SlackConfigError,
    SlackMode,
    bot_to_json,
    installation_key,
    slack_mode,
)
from bot.config import Settings
from bot.state import open_store
from bot.state.installations import connect_installations
from tests.fakes.fake_slack import ApiCall, FakeSlack, FakeUser, SlackSender, SocketModeSender
from tests.fakes.slack_harness import (
    ROOT,
    SIGNING_SECRET,
    UNLIMITED_QUOTA,
    RecordingService,
    headers_of,
    open_real_service,
    running_socket_mode,
    spawn_serve_slack,
    stopped_server_logs,
)

STATE_COOKIE = "slack-app-oauth-state"
ADMIN_T1 = "UADMINT1"


def oauth_settings(fake: FakeSlack, state_url: str, codes_db: Path, **extra: Any) -> Settings:
    """OAuth mode: client id + secret, no bot token; the fake as Slack."""
    values: dict[str, Any] = {
        "codes_db": codes_db,
        "database_url": state_url,
        "quota": dict(UNLIMITED_QUOTA),
        "slack_client_id": fake.client_id,
        "slack_client_secret": fake.client_secret,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "slack_redirect_uri": "https://codebot.example.com/slack/oauth_redirect",
    }
    values.update(extra)
    return Settings(**values)


@dataclass
class Replica:
    """One running copy of the app (its own process state, the shared state database)."""

    base: str
    adapter: SlackAdapter


@dataclass
class Cluster:
    """Replicas behind an imaginary load balancer, and what they share."""

    fake: FakeSlack
    replicas: list[Replica]
    service: RecordingService
    session: aiohttp.ClientSession
    settings: Settings
    senders: dict[str, SlackSender] = field(default_factory=dict)

    def sender(self, team_id: str, replica: int = 0) -> SlackSender:
        """Slack's side for one workspace, posting to one replica."""
        key = f"{team_id}@{replica}"
        if key not in self.senders:
            self.senders[key] = SlackSender(
                self.replicas[replica].base + "/slack/events",
                SIGNING_SECRET,
                self.fake,
                session=self.session,
                team_id=team_id,
            )
        return self.senders[key]

    async def install_page(self, replica: int = 0) -> tuple[str, str]:
        """Open "Add to Slack": (the state in its authorize link, the state cookie set)."""
        async with self.session.get(self.replicas[replica].base + "/slack/install") as page:
            assert page.status == 200
            body = await page.text()
            cookie = page.cookies[STATE_COOKIE].value
        found = re.search(r'href="(https://slack\.com/oauth/v2/authorize[^"]+)"', body)
        assert found, body
        link = html.unescape(found[1])
        query = parse_qs(urlsplit(link).query)
        assert query["client_id"] == [self.fake.client_id]
        assert set(query["scope"][0].split(",")) == set(BOT_SCOPES)
        return query["state"][0], cookie

    async def callback(
        self, code: str, state: str, cookie: str, replica: int = 0
    ) -> tuple[int, str]:
        """Slack redirects the installer's browser to the callback (with the cookie)."""
        url = (
            self.replicas[replica].base
            + "/slack/oauth_redirect?"
            + urlencode({"code": code, "state": state})
        )
        headers = {"Cookie": f"{STATE_COOKIE}={cookie}"}
        async with self.session.get(url, headers=headers, allow_redirects=False) as response:
            return response.status, await response.text()

    async def install(self, team_id: str | None, **approval: Any) -> str:
        """The whole flow for one workspace; returns the token the fake minted for it."""
        state, cookie = await self.install_page(0)
        code = self.fake.approve_install(team_id, **approval)
        # The callback lands on the other replica: state lives in the database, not memory.
        status, page = await self.callback(code, state, cookie, replica=len(self.replicas) - 1)
        assert status == 200, page
        tokens = self.fake.tokens_of(team_id or approval["enterprise_id"])
        assert tokens
        return tokens[-1]


@asynccontextmanager
async def cluster(
    fake: FakeSlack, settings: Settings, *, replicas: int = 2
) -> AsyncIterator[Cluster]:
    """`replicas` copies of the app on 127.0.0.1:0 over one real service and state DB."""
    async with open_real_service(settings) as inner:
        service = RecordingService(inner)
        runners: list[web.AppRunner] = []
        running: list[Replica] = []
        try:
            for _ in range(replicas):
                web_app = make_web_app(settings, service)
                runner = web.AppRunner(web_app, access_log=None)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                runners.append(runner)
                port = int(runner.addresses[0][1])
                running.append(Replica(f"http://127.0.0.1:{port}", web_app[ADAPTER_KEY]))
            async with aiohttp.ClientSession() as session:
                yield Cluster(fake, running, service, session, settings)
        finally:
            for runner in runners:
                await runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(admins=(ADMIN_T1,)) as slack:
        yield slack
        assert slack.violations == [], slack.violations


@pytest.fixture
async def apps(fake: FakeSlack, state_url: str, codes_db_path: Path) -> AsyncIterator[Cluster]:
    """Two replicas over a state database of each backend (SQLite, PostgreSQL)."""
    async with cluster(fake, oauth_settings(fake, state_url, codes_db_path)) as running:
        yield running


def calls_with(fake: FakeSlack, method: str, token: str) -> list[ApiCall]:
    """Calls of `method` made with `token`."""
    return [c for c in fake.of(method) if c.token == token]


async def mention(cluster: Cluster, team_id: str, text: str, **event: Any) -> ApiCall:
    """@codebot in a channel of `team_id`; the chat.postMessage that answered it."""
    sender = cluster.sender(team_id)
    before = len(cluster.fake.of("chat.postMessage"))
    payload = sender.mention(text, **event)
    sent = await sender.event(payload)
    assert sent.status == 200, sent.text
    posts = await cluster.fake.wait_for("chat.postMessage", before + 1)
    return posts[before]


# ---------------------------------------------------------------- install and answer


async def test_two_workspaces_each_answered_with_their_own_token(apps: Cluster) -> None:
    fake = apps.fake
    token_1 = await apps.install("T1")
    token_2 = await apps.install("T2")
    assert token_1 != token_2
    # oauth.v2.access was called with the client credentials, never a bot token.
    assert [c.token for c in fake.of("oauth.v2.access")] == ["", ""]

    # The OAuth flow itself asked auth.test once per new token (bolt stores the bot id).
    installed = {t: len(calls_with(fake, "auth.test", t)) for t in (token_1, token_2)}
    for _ in range(3):  # several requests per workspace ...
        for team, token in (("T1", token_1), ("T2", token_2)):
            post = await mention(apps, team, "E11.9")
            assert post.token == token, team
            assert post.args["thread_ts"]
            assert headers_of(post.args)[0].startswith("E11.9")
    # ... and one auth.test per workspace token (bolt's authorize cache), not per request.
    for token in (token_1, token_2):
        assert len(calls_with(fake, "auth.test", token)) - installed[token] == 1

    # A slash command is answered in its ack, for each workspace, by either replica.
    for team in ("T1", "T2"):
        for replica in (0, 1):
            sent, _ = await apps.sender(team, replica).command("I10")
            assert sent.status == 200
            assert headers_of(sent.json())[0].startswith("I10")
    tenants = {r.user.tenant_id for r in apps.service.requests}
    assert tenants == {"T1", "T2"}

    # users.info (an admin command) goes out with the asking workspace's token too.
    sent, _ = await apps.sender("T1").command("admin usage", user=ADMIN_T1)
    # T1's usage: its 3 mentions and 2 slash commands, none of T2's.
    assert "Top users" in sent.json()["text"] and "5 code lookups" in sent.json()["text"]
    (info,) = fake.of("users.info")
    assert info.token == token_1 and info.args["user"] == ADMIN_T1
    assert apps.service.requests[-1].is_admin


async def test_a_used_state_is_refused(apps: Cluster) -> None:
    fake = apps.fake
    state, cookie = await apps.install_page()
    status, _ = await apps.callback(fake.approve_install("T1"), state, cookie)
    assert status == 200
    # The same state again (a replayed or leaked callback URL), on either replica.
    for replica in (0, 1):
        status, page = await apps.callback(fake.approve_install("T9"), state, cookie, replica)
        assert status != 200
        assert "T9" not in page
    # The code exchange ran once: the replays never reached oauth.v2.access.
    assert len(fake.of("oauth.v2.access")) == 1
    assert fake.tokens_of("T9") == []
    # A state the app never issued, with a matching forged cookie, is refused as well.
    status, _ = await apps.callback(fake.approve_install("T8"), "forged", "forged")
    assert status != 200 and fake.tokens_of("T8") == []


async def test_a_state_is_good_once_under_concurrent_callbacks(apps: Cluster) -> None:
    state, cookie = await apps.install_page()
    codes = [apps.fake.approve_install(f"T{n}") for n in range(4)]
    results = await asyncio.gather(
        *(apps.callback(code, state, cookie, replica=n % 2) for n, code in enumerate(codes))
    )
    assert sorted(status == 200 for status, _ in results) == [False, False, False, True]
    assert len(apps.fake.of("oauth.v2.access")) == 1


async def test_expired_response_url_falls_back_with_the_workspace_token(apps: Cluster) -> None:
    fake = apps.fake
    await apps.install("T1")
    token_2 = await apps.install("T2")
    fake.expire_response_urls()
    sent, hook = await apps.sender("T2").click("E11.9", ACTION_PREFIX + "show_0", user="U2")
    assert sent.status == 200
    (fallback,) = await fake.wait_for("chat.postEphemeral", 1)
    assert fallback.token == token_2
    assert fallback.args["user"] == "U2" and fallback.args["channel"] == "C0001"
    assert headers_of(fallback.args)[0].startswith("E11.9")
    assert [c.hook for c in fake.of("response_url")] == [hook.rsplit("/", 1)[1]]


# ---------------------------------------------------------------- uninstall and revocation


async def test_uninstalled_workspace_gets_no_answer(apps: Cluster) -> None:
    fake = apps.fake
    await apps.install("T1")
    token_2 = await apps.install("T2")
    assert (await mention(apps, "T2", "E11.9")).token == token_2

    fake.revoke("T2")
    sent = await apps.sender("T2").event({"type": "app_uninstalled"})
    assert sent.status == 200
    records = await connect_installations(apps.settings)
    try:
        assert await records.find_installation(installation_key(None, "T2", False)) is None
        assert await records.find_installation(installation_key(None, "T1", False)) is not None
    finally:
        await records.close()

    asked = len(apps.service.requests)
    posted = len(fake.messages())
    await apps.sender("T2").event(apps.sender("T2").mention("E11.9"))
    sent, _ = await apps.sender("T2", 1).command("E11.9")
    await fake.settle()
    assert len(apps.service.requests) == asked  # never looked up, never charged
    assert "E11.9" not in sent.text
    assert not [m for m in fake.messages()[posted:] if m.method != "response_url"]
    assert all("E11.9" not in json.dumps(m.args) for m in fake.messages()[posted:])
    # The other workspace is unaffected.
    assert (await mention(apps, "T1", "I10")).token == fake.tokens_of("T1")[-1]
    # Usage data stays after the uninstall (until an admin purges it).
    store = await open_store(apps.settings)
    try:
        exported = await store.export_team("T2", "slack")
    finally:
        await store.close()
    assert len(exported["charges"]) == 1


async def test_revoked_bot_token_deletes_the_installation(apps: Cluster) -> None:
    fake = apps.fake
    await apps.install("T1")
    fake.revoke("T1")
    revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [fake.bot_user_id]}}
    assert (await apps.sender("T1").event(revoked)).status == 200
    asked = len(apps.service.requests)
    await apps.sender("T1").event(apps.sender("T1").mention("E11.9"))
    await fake.settle()
    assert len(apps.service.requests) == asked
    assert fake.of("chat.postMessage") == []
    # Reinstalling brings it back with a fresh token.
    token = await apps.install("T1")
    assert (await mention(apps, "T1", "E11.9")).token == token


# ---------------------------------------------------------------- Slack Connect, Grid


async def test_slack_connect_user_is_never_a_host_admin(apps: Cluster) -> None:
    fake = apps.fake
    token_1 = await apps.install("T1")
    # UEXT is an admin of their own organisation, TEXT, and sits in a channel shared with T1.
    fake.users["UEXT"] = FakeUser(team_id="TEXT", is_admin=True)
    fake.users[ADMIN_T1] = FakeUser(team_id="T1", is_admin=True)

    refused, _ = await apps.sender("T1").command("admin plan team unlimited", user="UEXT")
    allowed, _ = await apps.sender("T1").command("admin usage", user=ADMIN_T1)
    assert not apps.service.requests[-2].is_admin
    assert apps.service.requests[-1].is_admin
    assert refused.json() != allowed.json()
    assert all(c.token == token_1 for c in fake.of("users.info"))

    # A button click names the user's own team: refused without asking users.info.
    asked = len(fake.of("users.info"))
    click = apps.sender("T1").click_payload("admin usage", ACTION_PREFIX + "admin", user="UEXT2")
    click["user"]["team_id"] = "TEXT"
    body = urlencode({"payload": json.dumps(click)})
    await apps.sender("T1").post(body, "application/x-www-form-urlencoded")
    await fake.wait_for("response_url", 1)
    assert not apps.service.requests[-1].is_admin
    assert len(fake.of("users.info")) == asked

    # Their lookups are charged to the workspace that installed codebot.
    post = await mention(apps, "T1", "E11.9", user="UEXT")
    assert post.token == token_1
    assert apps.service.requests[-1].user.tenant_id == "T1"


async def test_enterprise_grid_org_wide_install(apps: Cluster) -> None:
    fake = apps.fake
    token = await apps.install(None, enterprise_id="E1", is_enterprise_install=True)
    sender = apps.sender("T5")
    form = sender.command_payload("E11.9", enterprise_id="E1")
    form["is_enterprise_install"] = "true"
    sent = await sender.post(urlencode(form), "application/x-www-form-urlencoded")
    assert headers_of(sent.json())[0].startswith("E11.9")
    # One tenant for the whole org: it installed (and pays for) codebot once.
    assert apps.service.requests[-1].user.tenant_id == "E1"
    assert calls_with(fake, "auth.test", token)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"slack_client_id": "1.2"}, "SLACK_CLIENT_SECRET is not set"),
        ({"slack_client_secret": "s"}, "SLACK_CLIENT_ID is not set"),
        (
            {"slack_client_id": "1.2", "slack_client_secret": "s", "slack_bot_token": "xoxb-1"},
            "choose one",
        ),
        ({"slack_signing_secret": "x"}, "SLACK_BOT_TOKEN .* is not set"),
        ({"slack_client_id": "1.2", "slack_client_secret": "s"}, "SLACK_SIGNING_SECRET"),
    ],
)
def test_ambiguous_settings_are_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(SlackConfigError, match=message):
        slack_mode(Settings(**values))


def test_modes() -> None:
    token = Settings(slack_bot_token="xoxb-1", slack_signing_secret="x")
    secret = "client-secret-never-shown"
    oauth = Settings(slack_client_id="1.2", slack_client_secret=secret, slack_signing_secret="x")
    assert slack_mode(token) is SlackMode.TOKEN and slack_mode(oauth) is SlackMode.OAUTH
    assert token.slack_enabled and oauth.slack_enabled
    assert secret not in repr(oauth)


@pytest.mark.parametrize("client_env", [("1111.2222", "secret"), ("", "")])
async def test_bot_token_with_client_env_refuses_to_start(
    tmp_path: Path, codes_db_path: Path, client_env: tuple[str, str]
) -> None:
    """The trap: bolt sees SLACK_CLIENT_ID/SECRET itself and would drop the bot token."""
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_CLIENT_ID": client_env[0],
        "SLACK_CLIENT_SECRET": client_env[1],
    }
    process = await spawn_serve_slack(tmp_path, codes_db_path, env)
    assert process.stdout is not None
    out = (await asyncio.wait_for(process.stdout.read(), 60)).decode()
    assert await asyncio.wait_for(process.wait(), 30) == 1
    logs = await stopped_server_logs(process)
    assert "listening" not in out
    assert "SLACK_CLIENT_ID" in out + logs and "SLACK_BOT_TOKEN" in out + logs
    assert "xoxb-1" not in out + logs  # the message names settings, never their values


def test_manifest_has_the_redirect_url_and_the_scopes() -> None:
    manifest = (ROOT / "slack-app-manifest.yml").read_text(encoding="utf-8")
    redirects = _yaml_list(manifest, "redirect_urls")
    assert redirects and all(url.endswith("/slack/oauth_redirect") for url in redirects)
    assert set(_yaml_list(manifest, "bot")) == set(BOT_SCOPES)


def _yaml_list(text: str, key: str) -> list[str]:
    """The `- item` lines right under `key:` (the manifest's simple block lists)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"{key}:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    items: list[str] = []
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if not stripped.startswith("- ") or len(line) - len(line.lstrip()) <= indent:
            break
        items.append(stripped[2:].strip().strip('"'))
    return items


# ---------------------------------------------------------------- Socket Mode


async def test_socket_mode_with_oauth_uses_each_workspace_token(
    fake: FakeSlack, state_url: str, codes_db_path: Path
) -> None:
    """OAuth over Socket Mode: events arrive on the websocket, answers use each team's token."""
    settings = oauth_settings(
        fake, state_url, codes_db_path, slack_signing_secret="", slack_app_token=fake.app_token
    )
    # Two workspaces installed earlier (through /slack/install on any replica).
    records = await connect_installations(settings)
    tokens: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for team in ("T1", "T2"):
                code = fake.approve_install(team)
                basic = f"{fake.client_id}:{fake.client_secret}".encode()
                auth = {"Authorization": "Basic " + base64.b64encode(basic).decode()}
                async with session.post(
                    fake.api_url + "oauth.v2.access", data={"code": code}, headers=auth
                ) as response:
                    granted = await response.json()
                tokens[team] = granted["access_token"]
                bot = Bot(
                    app_id="A0001",
                    team_id=team,
                    bot_token=granted["access_token"],
                    bot_id="B0001",
                    bot_user_id=fake.bot_user_id,
                    bot_scopes=list(BOT_SCOPES),
                    installed_at=time.time(),
                )
                key = installation_key(None, team, False)
                await records.save_installation(key, bot_to_json(bot, "UINSTALL1"), time.time())
    finally:
        await records.close()

    async with running_socket_mode(fake, settings) as socket:
        for team in ("T2", "T1"):
            sender = SocketModeSender(fake, team_id=team)
            before = len(fake.of("chat.postMessage"))
            ack = await sender.event(sender.mention("E11.9"))
            assert not ack.payload
            posts = await fake.wait_for("chat.postMessage", before + 1)
            assert posts[before].token == tokens[team]
            assert headers_of(posts[before].args)[0].startswith("E11.9")
        assert {r.user.tenant_id for r in socket.service.requests} == {"T1", "T2"}
        # A workspace that never installed gets nothing.
        stranger = SocketModeSender(fake, team_id="T9")
        asked = len(socket.service.requests)
        await stranger.event(stranger.mention("E11.9"))
        await fake.settle()
        assert len(socket.service.requests) == asked
