"""A fake Slack for tests and benchmarks: Web API + response_url on 127.0.0.1, and a sender.

`FakeSlack` serves `POST|GET /api/<method>` (auth.test, users.info, chat.postMessage,
chat.postEphemeral, anything else answers ok) and `POST /hooks/<id>` (response_url), records
every call, and checks every message payload it receives with `validate_blocks`. Errors can
be injected per method: `ratelimited` with Retry-After, `channel_not_found`, `not_in_channel`.

Socket Mode: `apps.connections.open` (called with the app-level token) answers a one-use
`ws://127.0.0.1:P/socket-mode?ticket=…` URL; the websocket there behaves like Slack's Socket
Mode server: it sends `{"type": "hello", …}`, lets the test push envelopes (`push`, or the
`SocketModeSender` helpers) and records every ack the client sends back (`acks`), checking
any Block Kit payload an ack carries. Connections opened and closed are recorded too.

OAuth (many workspaces): `approve_install(team_id, …)` plays the installer approving the app
on Slack's authorize page and returns the one-use `code` Slack would put on the redirect;
`oauth.v2.access` (client id + secret as HTTP Basic auth, as slack_sdk sends them) trades it
once for that workspace's own `xoxb-…` token (a used or unknown code: `invalid_code`, wrong
credentials: `invalid_client_id` / `bad_client_secret`). Every Web API call must carry a live
token (the single-workspace `token`, or one minted here) and `auth.test`, `users.info`
answer for the token's workspace; `revoke(team_id)` kills a workspace's tokens as an
uninstall does (`token_revoked`). `ApiCall.token` is the token each call carried.

`SlackSender` plays Slack's side towards the app under test over HTTP: it signs slash-command
form posts, Events API JSON and interactivity payloads with the v0 HMAC scheme, exactly as
Slack does, and validates every Block Kit payload the app answers with in an ack body.
`SocketModeSender` sends the same payloads as Socket Mode envelopes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from adapters.slack_blocks import block_kit_problems

MESSAGE_METHODS = {"chat.postMessage", "chat.postEphemeral", "chat.update"}
SOCKET_PATH = "/socket-mode"


@dataclass
class ApiCall:
    """One request the fake received: Web API method (or "response_url") and its arguments."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    hook: str = ""  # the response_url id for "response_url" calls

    @property
    def token(self) -> str:
        """The bearer token the call carried ("" for none)."""
        value = self.headers.get("authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else ""


@dataclass
class SocketAck:
    """One message the Socket Mode client sent back: an ack (`envelope_id`, maybe `payload`)."""

    envelope_id: str
    payload: dict[str, Any] | None
    connection: int
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class SocketConnection:
    """One websocket connection to the fake Socket Mode server."""

    number: int
    ws: web.WebSocketResponse
    open: bool = True
    closed_by: str = ""  # "client" (close frame from the app) or "server" (the fake closed it)
    close_code: int | None = None
    envelopes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Workspace:
    """A workspace (or Enterprise Grid org) that installed the app through OAuth."""

    team_id: str | None
    enterprise_id: str | None = None
    is_enterprise_install: bool = False
    installer: str = "UINSTALL1"
    team_name: str = "Fake Team"
    tokens: list[str] = field(default_factory=list)
    revoked: bool = False


@dataclass
class FakeUser:
    """A user as users.info describes them (home team, admin flags)."""

    team_id: str
    is_admin: bool = False
    enterprise_id: str | None = None


@dataclass
class _Injected:
    error: str
    times: int
    status: int = 200
    retry_after: int | None = None


class FakeSlack:
    """Fake Slack Web API and response_url endpoint on 127.0.0.1, port chosen by the OS."""

    def __init__(
        self,
        *,
        token: str = "xoxb-test-token",
        app_token: str = "xapp-1-A0001-test-app-token",
        team_id: str = "T0001",
        bot_user_id: str = "UBOT0001",
        admins: tuple[str, ...] = (),
        client_id: str = "1111.2222",
        client_secret: str = "fake-client-secret",
    ) -> None:
        self.token = token
        self.client_id = client_id
        self.client_secret = client_secret
        self.workspaces: dict[str, Workspace] = {}  # by minted token
        self.users: dict[str, FakeUser] = {}  # users.info overrides (e.g. Slack Connect)
        self._codes: dict[str, Workspace] = {}  # one-use OAuth codes not yet exchanged
        self._minted = itertools.count(1)
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.admins = set(admins)
        self.calls: list[ApiCall] = []
        self.violations: list[str] = []
        self._injected: dict[str, list[_Injected]] = {}
        self._changed = asyncio.Condition()
        self._ts = itertools.count(1)
        self._hooks = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Socket Mode
        self.acks: list[SocketAck] = []
        self.connections: list[SocketConnection] = []
        self._tickets: set[str] = set()
        self._ticket_ids = itertools.count(1)
        self._envelope_ids = itertools.count(1)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> FakeSlack:
        """Start serving on 127.0.0.1:0 and remember the bound port."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/hooks/{hook}", self._hook)
        app.router.add_get(SOCKET_PATH, self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        """Stop serving (closing any websocket still open)."""
        for connection in self.open_connections():
            connection.closed_by = connection.closed_by or "server"
            await connection.ws.close(code=1001, message=b"fake slack shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def api_url(self) -> str:
        """The SLACK_API_URL to give the app (ends with `/`, as slack_sdk requires)."""
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def socket_url(self) -> str:
        """The Socket Mode websocket (apps.connections.open adds a one-use ticket)."""
        return f"ws://127.0.0.1:{self.port}{SOCKET_PATH}"

    def response_url(self) -> str:
        """A fresh response_url served by this fake."""
        return f"http://127.0.0.1:{self.port}/hooks/{next(self._hooks)}"

    # ------------------------------------------------------------ injecting trouble

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}`."""
        self._injected.setdefault(method, []).append(_Injected(error, times))

    def expire_response_urls(self, *, times: int = 1) -> None:
        """The next `times` response_url posts get 404 (expired or used up), as Slack does."""
        self._injected.setdefault("response_url", []).append(
            _Injected("expired_url", times, status=404)
        )

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` calls of `method` answer HTTP 429 with `Retry-After`."""
        self._injected.setdefault(method, []).append(
            _Injected("ratelimited", times, status=429, retry_after=retry_after)
        )

    # ------------------------------------------------------------ OAuth

    def approve_install(
        self,
        team_id: str | None,
        *,
        enterprise_id: str | None = None,
        is_enterprise_install: bool = False,
        installer: str = "UINSTALL1",
    ) -> str:
        """The installer clicked "Allow": the one-use code Slack appends to the redirect."""
        code = f"code-{next(self._minted)}-{team_id or enterprise_id}"
        self._codes[code] = Workspace(team_id, enterprise_id, is_enterprise_install, installer)
        return code

    def tokens_of(self, team_id: str) -> list[str]:
        """Tokens minted for a workspace (or org, by enterprise id), oldest first."""
        return [
            token
            for token, ws in self.workspaces.items()
            if team_id in (ws.team_id, ws.enterprise_id)
        ]

    def revoke(self, team_id: str) -> None:
        """The workspace uninstalled the app: its tokens stop working."""
        for token in self.tokens_of(team_id):
            self.workspaces[token].revoked = True

    def _oauth_access(self, request_auth: str, args: Mapping[str, Any]) -> dict[str, Any]:
        client_id, client_secret = _basic_auth(request_auth)
        client_id = client_id or str(args.get("client_id") or "")
        client_secret = client_secret or str(args.get("client_secret") or "")
        if client_id != self.client_id:
            return {"ok": False, "error": "invalid_client_id"}
        if client_secret != self.client_secret:
            return {"ok": False, "error": "bad_client_secret"}
        workspace = self._codes.pop(str(args.get("code") or ""), None)
        if workspace is None:  # unknown or already exchanged: codes are good once
            return {"ok": False, "error": "invalid_code"}
        token = f"xoxb-{workspace.team_id or workspace.enterprise_id}-{next(self._minted):04d}"
        workspace.tokens.append(token)
        self.workspaces[token] = workspace
        enterprise = (
            {"id": workspace.enterprise_id, "name": "Fake Org"} if workspace.enterprise_id else None
        )
        team = {"id": workspace.team_id, "name": workspace.team_name} if workspace.team_id else None
        return {
            "ok": True,
            "app_id": "A0001",
            "authed_user": {"id": workspace.installer},
            "scope": str(args.get("scope") or "commands,chat:write"),
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": self.bot_user_id,
            "team": team,
            "enterprise": enterprise,
            "is_enterprise_install": workspace.is_enterprise_install,
        }

    def _token_problem(self, method: str, authorization: str) -> str:
        """'' when the call's credentials are good, else Slack's error for them."""
        if method == "oauth.v2.access":
            return ""  # client credentials, checked by _oauth_access
        expected = self.app_token if method == "apps.connections.open" else None
        if not authorization.startswith("Bearer "):
            return "not_authed"
        token = authorization[len("Bearer ") :]
        if expected is not None:
            return "" if token == expected else "invalid_auth"
        if token == self.token:
            return ""
        workspace = self.workspaces.get(token)
        if workspace is None:
            return "invalid_auth"
        return "token_revoked" if workspace.revoked else ""

    # ------------------------------------------------------------ reading what happened

    def of(self, method: str) -> list[ApiCall]:
        """Calls of one method ("response_url" for response_url posts), oldest first."""
        return [call for call in self.calls if call.method == method]

    def messages(self) -> list[ApiCall]:
        """Every message the app sent: chat.* posts and response_url posts."""
        return [c for c in self.calls if c.method in MESSAGE_METHODS or c.method == "response_url"]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        *,
        timeout: float = 5.0,
        where: Callable[[ApiCall], bool] | None = None,
    ) -> list[ApiCall]:
        """Wait until at least `count` calls of `method` (matching `where`) arrived."""

        def matching() -> list[ApiCall]:
            return [c for c in self.of(method) if where is None or where(c)]

        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(matching()) >= count), timeout
            )
        return matching()

    async def settle(self, quiet: float = 0.3) -> None:
        """Wait until no call arrived for `quiet` seconds (to assert something did NOT happen)."""
        seen = -1
        while seen != len(self.calls):
            seen = len(self.calls)
            await asyncio.sleep(quiet)

    # ------------------------------------------------------------ Socket Mode

    def open_connections(self) -> list[SocketConnection]:
        """Websocket connections currently open, oldest first."""
        return [c for c in self.connections if c.open]

    async def wait_connection(self, number: int, *, timeout: float = 10.0) -> SocketConnection:
        """Wait until connection number `number` (1 = the first ever) has been opened."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.connections) >= number), timeout
            )
        return self.connections[number - 1]

    async def wait_disconnected(self, *, timeout: float = 10.0) -> list[SocketConnection]:
        """Wait until every connection ever opened is closed; return them all."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(
                    lambda: bool(self.connections) and not self.open_connections()
                ),
                timeout,
            )
        return list(self.connections)

    async def push(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        accepts_response_payload: bool = True,
        connection: SocketConnection | None = None,
    ) -> str:
        """Send one envelope (`slash_commands`, `events_api`, `interactive`) as Slack does.

        Goes to `connection` or the newest open one; returns the envelope id.
        """
        opened = self.open_connections()
        target = connection or (opened[-1] if opened else None)
        if target is None or not target.open:
            raise RuntimeError("no Socket Mode connection is open")
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or f"env-{next(self._envelope_ids):06d}",
            "type": kind,
            "payload": dict(payload),
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason or "timeout"
        target.envelopes.append(envelope)
        await target.ws.send_json(envelope)
        return str(envelope["envelope_id"])

    async def request_disconnect(
        self, reason: str = "refresh_requested", connection: SocketConnection | None = None
    ) -> None:
        """Send Slack's `{"type": "disconnect"}` (the client should reconnect elsewhere)."""
        target = connection or self.open_connections()[-1]
        await target.ws.send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        )

    def acks_of(self, envelope_id: str) -> list[SocketAck]:
        """Acks received for one envelope (Slack expects exactly one)."""
        return [ack for ack in self.acks if ack.envelope_id == envelope_id]

    async def wait_ack(self, envelope_id: str, *, timeout: float = 5.0) -> SocketAck:
        """Wait for the client's ack of `envelope_id`."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: bool(self.acks_of(envelope_id))), timeout
            )
        return self.acks_of(envelope_id)[0]

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:  # like Slack: only a URL from apps.connections.open
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)  # each URL is good for one connection
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = SocketConnection(len(self.connections) + 1, ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.open_connections()) + 1,
                "debug_info": {
                    "host": "fake-slack",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": "A0001"},
            }
        )
        async with self._changed:
            self.connections.append(connection)
            self._changed.notify_all()
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await self._record_ack(connection, message.data)
        finally:
            async with self._changed:
                connection.open = False
                connection.closed_by = connection.closed_by or "client"
                connection.close_code = ws.close_code
                self._changed.notify_all()
        return ws

    async def _record_ack(self, connection: SocketConnection, data: str) -> None:
        try:
            raw = json.loads(data)
        except ValueError:
            self.violations.append(f"socket: not JSON: {data[:80]!r}")
            return
        if not isinstance(raw, dict) or "envelope_id" not in raw:
            self.violations.append(f"socket: not an ack: {data[:80]!r}")
            return
        payload = raw.get("payload")
        if isinstance(payload, dict) and ("blocks" in payload or "text" in payload):
            self.violations.extend(
                f"socket ack: {problem}" for problem in block_kit_problems(payload)
            )
        ack = SocketAck(str(raw["envelope_id"]), payload, connection.number, raw)
        async with self._changed:
            self.acks.append(ack)
            self._changed.notify_all()

    # ------------------------------------------------------------ handlers

    async def _record(self, call: ApiCall) -> None:
        if call.method in MESSAGE_METHODS or call.method == "response_url":
            self.violations.extend(
                f"{call.method}: {problem}" for problem in block_kit_problems(call.args)
            )
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(await request.post())
        headers = {key.lower(): value for key, value in request.headers.items()}
        await self._record(ApiCall(method, args, headers))
        # apps.connections.open takes the app-level token (xapp-), oauth.v2.access the
        # client credentials, everything else a live bot token
        problem = self._token_problem(method, headers.get("authorization", ""))
        if problem:
            return web.json_response({"ok": False, "error": problem})
        if method == "oauth.v2.access":
            return web.json_response(self._oauth_access(headers.get("authorization", ""), args))
        injected = self._take_injected(method)
        if injected is not None:
            extra = {"Retry-After": str(injected.retry_after)} if injected.retry_after else {}
            return web.json_response(
                {"ok": False, "error": injected.error}, status=injected.status, headers=extra
            )
        workspace = self.workspaces.get(headers.get("authorization", "")[len("Bearer ") :])
        return web.json_response(self._answer(method, args, workspace))

    def _take_injected(self, method: str) -> _Injected | None:
        queue = self._injected.get(method)
        if not queue:
            return None
        injected = queue[0]
        injected.times -= 1
        if injected.times <= 0:
            queue.pop(0)
        return injected

    def _answer(
        self, method: str, args: Mapping[str, Any], workspace: Workspace | None = None
    ) -> dict[str, Any]:
        if method == "apps.connections.open":
            ticket = f"ticket-{next(self._ticket_ids)}"
            self._tickets.add(ticket)
            return {"ok": True, "url": f"{self.socket_url}?ticket={ticket}&app_id=A0001"}
        team_id = self.team_id if workspace is None else workspace.team_id
        enterprise_id = None if workspace is None else workspace.enterprise_id
        if method == "auth.test":
            answer: dict[str, Any] = {
                "ok": True,
                "url": "https://fake.slack.test/",
                "team": "Fake Team",
                "user": "codebot",
                "team_id": team_id,
                "user_id": self.bot_user_id,
                "bot_id": "B0001",
                "is_enterprise_install": bool(workspace and workspace.is_enterprise_install),
            }
            if enterprise_id:
                answer["enterprise_id"] = enterprise_id
            return answer
        if method == "users.info":
            user_id = str(args.get("user", ""))
            known = self.users.get(user_id)
            profile: dict[str, Any] = {
                "id": user_id,
                "team_id": known.team_id if known else (team_id or enterprise_id),
                "is_admin": known.is_admin if known else user_id in self.admins,
                "is_owner": False,
                "name": user_id.lower(),
            }
            home_enterprise = known.enterprise_id if known else enterprise_id
            if home_enterprise:
                profile["enterprise_user"] = {"enterprise_id": home_enterprise, "is_admin": False}
            return {"ok": True, "user": profile}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        if method == "chat.postMessage":
            return {
                "ok": True,
                "channel": args.get("channel"),
                "ts": ts,
                "message": {"text": args.get("text"), "ts": ts},
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        return {"ok": True}

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        hook = request.match_info["hook"]
        await self._record(ApiCall("response_url", body, dict(request.headers), hook=hook))
        injected = self._take_injected("response_url")
        if injected is not None:
            extra = {"Retry-After": str(injected.retry_after)} if injected.retry_after else {}
            return web.Response(status=injected.status or 404, text=injected.error, headers=extra)
        return web.Response(text="ok")


# ---------------------------------------------------------------- signing and sending


def _basic_auth(header: str) -> tuple[str, str]:
    """(client id, client secret) of an HTTP Basic Authorization header, or empty strings."""
    if not header.startswith("Basic "):
        return "", ""
    try:
        decoded = base64.b64decode(header[len("Basic ") :]).decode()
    except (ValueError, UnicodeDecodeError):
        return "", ""
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def slack_signature(secret: str, timestamp: str, body: str | bytes) -> str:
    """Slack's v0 request signature: HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    raw = body.encode() if isinstance(body, str) else body
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class SentResponse:
    """What the app answered to one signed post."""

    status: int
    text: str
    headers: dict[str, str]

    def json(self) -> dict[str, Any]:
        """The body as JSON ({} when empty)."""
        return json.loads(self.text) if self.text.strip() else {}


_SENT_IDS = itertools.count(1)


class _SlackSide:
    """What Slack sends, as dicts: slash commands, Events API callbacks, button clicks."""

    def __init__(self, fake: FakeSlack, team_id: str = "T0001") -> None:
        self.fake = fake
        self.team_id = team_id
        # Slack's event and trigger ids are unique across all workspaces: one counter for
        # every sender (several workspaces talk to one app in the OAuth tests).
        self._ids = _SENT_IDS

    def _next(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def command_payload(
        self,
        text: str,
        *,
        user: str = "U0001",
        channel: str = "C0001",
        command: str = "/code",
        enterprise_id: str | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, str]:
        """A slash command's fields (a fresh response_url on the fake), all strings."""
        form = {
            "token": "verification-token-unused",
            "team_id": self.team_id,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "is_enterprise_install": "false",
            "response_url": self.fake.response_url(),
            "trigger_id": trigger_id or self._next("1234.5678.trigger"),
        }
        if enterprise_id:
            form["enterprise_id"] = enterprise_id
        return form

    def event_callback(
        self, event: Mapping[str, Any], *, event_id: str | None = None
    ) -> dict[str, Any]:
        """An Events API `event_callback` wrapping `event`."""
        return {
            "token": "verification-token-unused",
            "team_id": self.team_id,
            "api_app_id": "A0001",
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id or self._next("Ev"),
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": self.team_id, "user_id": self.fake.bot_user_id, "is_bot": True}
            ],
        }

    def click_payload(
        self,
        value: str,
        action_id: str,
        *,
        user: str = "U0001",
        channel: str = "C0001",
        message_ts: str = "1700000000.000100",
    ) -> dict[str, Any]:
        """A block_actions payload for one button (a fresh response_url on the fake)."""
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "api_app_id": "A0001",
            "token": "verification-token-unused",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": True,
            },
            "trigger_id": self._next("9999.trigger"),
            "team": {"id": self.team_id, "domain": "fake"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "general"},
            "response_url": self.fake.response_url(),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b1",
                    "text": {"type": "plain_text", "text": "Button"},
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    def mention(
        self,
        text: str,
        *,
        user: str = "U0001",
        channel: str = "C0001",
        ts: str | None = None,
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        """An app_mention event addressed to the fake's bot user."""
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": f"<@{self.fake.bot_user_id}> {text}",
            "ts": ts or f"{int(time.time())}.{next(self._ids):06d}",
            "channel": channel,
            "event_ts": ts or "1.0",
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def direct_message(
        self, text: str, *, user: str = "U0001", channel: str = "D0001", **extra: Any
    ) -> dict[str, Any]:
        """A message.im event."""
        return {
            "type": "message",
            "channel_type": "im",
            "user": user,
            "text": text,
            "ts": f"{int(time.time())}.{next(self._ids):06d}",
            "channel": channel,
            **extra,
        }


class SlackSender(_SlackSide):
    """Sends signed requests to the app as Slack would, validating every payload answered."""

    def __init__(
        self,
        app_url: str,
        secret: str,
        fake: FakeSlack,
        *,
        session: aiohttp.ClientSession,
        team_id: str = "T0001",
    ) -> None:
        super().__init__(fake, team_id)
        self.url = app_url
        self.secret = secret
        self.session = session

    async def post(
        self,
        body: str | bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SentResponse:
        """POST a raw body with Slack's signature headers; validate any Block Kit answer."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signed = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack_signature(secret or self.secret, stamp, body),
            **(headers or {}),
        }
        raw = body.encode() if isinstance(body, str) else body
        async with self.session.post(self.url, data=raw, headers=signed) as response:
            sent = SentResponse(response.status, await response.text(), dict(response.headers))
        if sent.status == 200 and sent.text.startswith("{"):
            payload = sent.json()
            if "blocks" in payload or "text" in payload:
                problems = block_kit_problems(payload)
                self.fake.violations.extend(f"ack: {problem}" for problem in problems)
        return sent

    async def command(
        self,
        text: str,
        *,
        user: str = "U0001",
        channel: str = "C0001",
        command: str = "/code",
        enterprise_id: str | None = None,
        trigger_id: str | None = None,
        **post: Any,
    ) -> tuple[SentResponse, str]:
        """A slash command form post; returns the ack and the response_url it carried."""
        form = self.command_payload(
            text,
            user=user,
            channel=channel,
            command=command,
            enterprise_id=enterprise_id,
            trigger_id=trigger_id,
        )
        sent = await self.post(urlencode(form), "application/x-www-form-urlencoded", **post)
        return sent, form["response_url"]

    async def event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        **post: Any,
    ) -> SentResponse:
        """An Events API callback (optionally marked as Slack's retry number N)."""
        envelope = self.event_callback(event, event_id=event_id)
        headers = dict(post.pop("headers", {}) or {})
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self.post(json.dumps(envelope), "application/json", headers=headers, **post)

    async def click(
        self,
        value: str,
        action_id: str,
        *,
        user: str = "U0001",
        channel: str = "C0001",
        message_ts: str = "1700000000.000100",
        **post: Any,
    ) -> tuple[SentResponse, str]:
        """A block_actions payload for one button; returns the ack and its response_url."""
        payload = self.click_payload(
            value, action_id, user=user, channel=channel, message_ts=message_ts
        )
        body = urlencode({"payload": json.dumps(payload)})
        sent = await self.post(body, "application/x-www-form-urlencoded", **post)
        return sent, str(payload["response_url"])


class SocketModeSender(_SlackSide):
    """Sends what Slack sends as Socket Mode envelopes over the fake's websocket.

    Each method pushes one envelope and waits for the app's ack (`SocketAck`); ack payloads
    are checked against Block Kit limits by the fake (see `FakeSlack.violations`).
    """

    async def _push_and_ack(
        self, kind: str, payload: Mapping[str, Any], *, timeout: float = 5.0, **push: Any
    ) -> SocketAck:
        envelope_id = await self.fake.push(kind, payload, **push)
        return await self.fake.wait_ack(envelope_id, timeout=timeout)

    async def command(
        self,
        text: str,
        *,
        timeout: float = 5.0,
        connection: SocketConnection | None = None,
        **fields: Any,
    ) -> tuple[SocketAck, str]:
        """A `slash_commands` envelope; returns the ack and the response_url it carried."""
        payload = self.command_payload(text, **fields)
        ack = await self._push_and_ack(
            "slash_commands", payload, timeout=timeout, connection=connection
        )
        return ack, payload["response_url"]

    async def event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_attempt: int | None = None,
        timeout: float = 5.0,
        **push: Any,
    ) -> SocketAck:
        """An `events_api` envelope (a retry when `retry_attempt` is given)."""
        payload = self.event_callback(event, event_id=event_id)
        return await self._push_and_ack(
            "events_api", payload, retry_attempt=retry_attempt, timeout=timeout, **push
        )

    async def click(
        self,
        value: str,
        action_id: str,
        *,
        timeout: float = 5.0,
        connection: SocketConnection | None = None,
        **fields: Any,
    ) -> tuple[SocketAck, str]:
        """An `interactive` envelope with a block_actions payload; returns ack, response_url."""
        payload = self.click_payload(value, action_id, **fields)
        ack = await self._push_and_ack(
            "interactive", payload, timeout=timeout, connection=connection
        )
        return ack, str(payload["response_url"])
