"""A fake Discord (REST API + gateway websocket) on 127.0.0.1, for the real discord.py client.

The real `discord.Client` is pointed here with `DISCORD_API_URL` (REST base, e.g.
`http://127.0.0.1:P/api/v10`) and `DISCORD_GATEWAY_URL` (`ws://127.0.0.1:P/gateway`). The
fake implements only what the client uses, shaped like Discord's payloads:

REST: `GET /users/@me`, `GET /oauth2/applications/@me`, `GET /gateway/bot`, application
command `PUT/GET` (global and guild), `POST /interactions/{id}/{token}/callback`, webhook
follow-ups `POST/PATCH/GET/DELETE /webhooks/{app_id}/{token}[/messages/{id}]`,
`POST /channels/{id}/messages`. An interaction takes one callback: a second gets 400 with
code 40060, as Discord answers it. Every call is recorded (`calls`) so tests can read what the
bot sent, and `fail_next` makes the next matching call fail (REST error tests).

Gateway: HELLO (op 10) on connect, IDENTIFY (op 2) answered with READY then GUILD_CREATE,
heartbeats (op 1) acked with op 11, RESUME (op 6) answered with RESUMED. Sharding as Discord
does it: IDENTIFY `shard: [id, count]` gets only the guilds `(guild_id >> 22) % count == id`,
a dispatched event goes only to the sessions of its guild's shard (DMs: shard 0), an
impossible shard id is closed with 4010 (Invalid shard), and `GET /gateway/bot` reports the
`max_concurrency` the fake was given (identify buckets). Frames are plain JSON
text unless the client asks for `compress=zlib-stream` (discord.py does when zstd is not
installed), in which case they are zlib-stream binary frames, as Discord sends them.
Tests push events with `dispatch("INTERACTION_CREATE", payload)`; the `*_payload` helpers
build payloads shaped like Discord's.

Like Discord without the privileged message-content intent, MESSAGE_CREATE content is blanked
unless the message mentions the bot or is a DM, so the adapter is tested under the real rule.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import itertools
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_limits import form_errors, invalid_form_body

API_PREFIX = "/api/v10"
MESSAGE_CONTENT_INTENT = 1 << 15
EPHEMERAL_FLAG = 1 << 6
MANAGE_GUILD = 1 << 5
ALREADY_ACKNOWLEDGED = 40060  # Discord's code for a second response to one interaction
# A typical member's permissions (view, send, read history...) without Manage Server.
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 6) | (1 << 31)
ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | MANAGE_GUILD
TIMESTAMP = "2026-01-15T12:00:00.000000+00:00"


@dataclass
class Call:
    """One REST call the client made."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int = 200
    created: dict[str, Any] | None = None  # the message object this call created, with its id

    def message(self) -> dict[str, Any]:
        """The message payload the call carries (interaction callbacks wrap it in `data`)."""
        if not isinstance(self.json, dict):
            return {}
        if self.path.endswith("/callback"):
            data = self.json.get("data")
            return data if isinstance(data, dict) else {}
        return self.json


@dataclass
class _Failure:
    pattern: re.Pattern[str]
    status: int
    body: dict[str, Any]
    remaining: int


@dataclass
class _Gateway:
    ws: web.WebSocketResponse
    compressor: Any | None
    identified: asyncio.Event = field(default_factory=asyncio.Event)
    intents: int = 0
    shard: tuple[int, int] = (0, 1)


def _snowflakes() -> Callable[[], str]:
    counter = itertools.count(1)
    # Realistic 18-19 digit ids, increasing like Discord's.
    return lambda: str(1_300_000_000_000_000_000 + next(counter))


class FakeDiscord:
    """The fake. `async with FakeDiscord() as fake:` starts it on a free port."""

    def __init__(
        self, *, guild_ids: tuple[str, ...] = ("900000000000000001",), max_concurrency: int = 1
    ) -> None:
        self.max_concurrency = max_concurrency
        self._next_id = _snowflakes()
        self.bot_id = "800000000000000001"
        self.app_id = "800000000000000001"
        self.bot_user = {
            "id": self.bot_id,
            "username": "codebot",
            "global_name": "codebot",
            "discriminator": "0",
            "avatar": None,
            "bot": True,
            "flags": 0,
        }
        self.guild_ids = guild_ids
        self.channel_ids = {gid: str(int(gid) + 100) for gid in guild_ids}
        self.calls: list[Call] = []
        self.acknowledged: set[str] = set()  # interaction ids that got their one response
        self.refused: list[list[str]] = []  # 50035 refusals: what real Discord would refuse
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.identifies: list[dict[str, Any]] = []
        self.gateways: list[_Gateway] = []
        self._failures: list[_Failure] = []
        self._changed = asyncio.Condition()
        self._sequence = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1, port chosen by the OS."""
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        # Port 0: read back the port the OS chose from the bound socket.
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close websockets and the server."""
        for gateway in list(self.gateways):
            await gateway.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        """Value for DISCORD_API_URL."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Value for DISCORD_GATEWAY_URL."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ------------------------------------------------------------------ test helpers

    def new_id(self) -> str:
        """A fresh snowflake."""
        return self._next_id()

    def fail_next(
        self, path_regex: str, status: int = 500, *, times: int = 1, code: int = 0
    ) -> None:
        """Make the next `times` REST calls whose path matches fail with `status`.

        429 answers look like Discord's rate limit (retry_after in the body, `Via` header),
        so discord.py waits and retries them.
        """
        body: dict[str, Any] = {"message": "fake failure", "code": code}
        if status == 429:
            body = {
                "message": "You are being rate limited.",
                "retry_after": 0.05,
                "global": False,
                "code": code,
            }
        self._failures.append(_Failure(re.compile(path_regex), status, body, times))

    async def wait_for_call(
        self, predicate: Callable[[Call], bool], *, timeout: float = 5.0, after: int = 0
    ) -> Call:
        """The first recorded call (from index `after`) matching `predicate`; waits for it."""

        def find() -> Call | None:
            return next((c for c in self.calls[after:] if predicate(c)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(find), timeout)
        found = find()
        assert found is not None
        return found

    async def wait_identified(self, *, timeout: float = 10.0, count: int = 1) -> None:
        """Wait until `count` gateway connections have identified (READY was sent)."""

        def done() -> bool:
            return sum(g.identified.is_set() for g in self.gateways) >= count

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(done), timeout)

    async def dispatch(self, event: str, data: dict[str, Any], *, shard: int | None = None) -> None:
        """Send a DISPATCH (op 0) event to the sessions of its shard, as Discord routes it.

        The shard is the event's guild's (`(guild_id >> 22) % shard_count`; no guild: shard
        0), or `shard` when given. Every session of that shard gets it (two sessions of one
        shard, as during a rolling deploy, both receive the event).
        """
        if event == "MESSAGE_CREATE":
            data = self._apply_content_intent(data)
        guild_id = data.get("guild_id")
        for gateway in self.gateways:
            if not gateway.identified.is_set() or gateway.ws.closed:
                continue
            shard_id, shard_count = gateway.shard
            wanted = shard if shard is not None else shard_of(guild_id, shard_count)
            if shard_id != wanted:
                continue
            await self._send(gateway, {"op": 0, "t": event, "s": next(self._sequence), "d": data})

    async def drop_connections(self) -> None:
        """Close every gateway websocket abnormally, as a network blip would (reconnect test)."""
        for gateway in list(self.gateways):
            await gateway.ws.close(code=4000, message=b"fake drop")

    # ------------------------------------------------------------------ payload builders

    def user_payload(
        self,
        user_id: str = "700000000000000001",
        name: str = "coder",
        global_name: str | None = None,
    ) -> dict[str, Any]:
        """A Discord user object (display name `global_name`, by default the title-cased name)."""
        return {
            "id": user_id,
            "username": name,
            "global_name": name.title() if global_name is None else global_name,
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
        }

    def member_payload(self, user: dict[str, Any], permissions: int) -> dict[str, Any]:
        """A guild member object as found in interactions (with `permissions`)."""
        return {
            "user": user,
            "roles": [],
            "joined_at": TIMESTAMP,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "permissions": str(permissions),
        }

    def _interaction_base(
        self,
        kind: int,
        *,
        guild_id: str | None,
        user_id: str,
        permissions: int,
        channel_id: str | None = None,
        global_name: str | None = None,
    ) -> dict[str, Any]:
        user = self.user_payload(user_id, global_name=global_name)
        payload: dict[str, Any] = {
            "id": self.new_id(),
            "application_id": self.app_id,
            "type": kind,
            "token": "itoken-" + self.new_id(),
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "app_permissions": str(ADMIN_PERMISSIONS),
            "attachment_size_limit": 10_485_760,
        }
        if guild_id is not None:
            channel = channel_id or self.channel_ids[guild_id]
            payload.update(
                guild_id=guild_id,
                guild_locale="en-US",
                channel_id=channel,
                channel=_text_channel(channel, guild_id),
                member=self.member_payload(user, permissions),
                context=0,
                authorizing_integration_owners={"0": guild_id},
            )
        else:
            channel = channel_id or str(int(user_id) + 5)
            payload.update(
                channel_id=channel,
                channel={
                    "id": channel,
                    "type": 1,
                    "recipients": [user],
                    "last_message_id": None,
                    "flags": 0,
                },
                user=user,
                context=1,
                authorizing_integration_owners={"0": self.bot_id},
            )
        return payload

    def slash_payload(
        self,
        query: str,
        *,
        guild_id: str | None = "900000000000000001",
        user_id: str = "700000000000000001",
        permissions: int = MEMBER_PERMISSIONS,
        command_name: str = "code",
        global_name: str | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE for `/code query:<query>` (type 2, APPLICATION_COMMAND)."""
        payload = self._interaction_base(
            2,
            guild_id=guild_id,
            user_id=user_id,
            permissions=permissions,
            global_name=global_name,
        )
        payload["data"] = {
            "id": self._command_id(command_name, guild_id),
            "name": command_name,
            "type": 1,
            "options": [{"name": "query", "type": 3, "value": query}],
        }
        if guild_id is not None:
            payload["data"]["guild_id"] = guild_id
        return payload

    def autocomplete_payload(
        self,
        typed: str,
        *,
        guild_id: str | None = "900000000000000001",
        user_id: str = "700000000000000001",
    ) -> dict[str, Any]:
        """INTERACTION_CREATE for autocomplete on `query` (type 4)."""
        payload = self._interaction_base(
            4, guild_id=guild_id, user_id=user_id, permissions=MEMBER_PERMISSIONS
        )
        payload["data"] = {
            "id": self._command_id("code", guild_id),
            "name": "code",
            "type": 1,
            "options": [{"name": "query", "type": 3, "value": typed, "focused": True}],
        }
        return payload

    def component_payload(
        self,
        message: dict[str, Any],
        custom_id: str,
        *,
        values: list[str] | None = None,
        guild_id: str | None = "900000000000000001",
        user_id: str = "700000000000000001",
        permissions: int = MEMBER_PERMISSIONS,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE for a click on a component of `message` (type 3).

        `message` is the message the bot created (`call.created`, which has its id), or a
        sent payload (`call.message()`, given a fresh id); Discord echoes it back with an id,
        author and the components as sent.
        """
        payload = self._interaction_base(
            3, guild_id=guild_id, user_id=user_id, permissions=permissions
        )
        if "id" in message:  # a message the fake created: the same id on every click
            shown = {**message, "channel_id": payload["channel_id"]}
        else:
            shown = self.message_object(
                message, channel_id=payload["channel_id"], guild_id=guild_id
            )
        payload["message"] = shown
        component_type = 3 if values is not None else 2
        payload["data"] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            payload["data"]["values"] = values
        return payload

    def message_object(
        self, sent: dict[str, Any], *, channel_id: str, guild_id: str | None
    ) -> dict[str, Any]:
        """A full message object for a message the bot sent (what Discord stores/returns)."""
        message: dict[str, Any] = {
            "id": self.new_id(),
            "channel_id": channel_id,
            "author": self.bot_user,
            "content": sent.get("content") or "",
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": sent.get("embeds") or [],
            "components": _with_component_ids(sent.get("components") or []),
            "pinned": False,
            "type": 0,
            "flags": int(sent.get("flags") or 0),
            "application_id": self.app_id,
        }
        if guild_id is not None:
            message["guild_id"] = guild_id
        return message

    def message_payload(
        self,
        content: str,
        *,
        guild_id: str | None = "900000000000000001",
        user_id: str = "700000000000000001",
        mention_bot: bool = True,
        bot_author: bool = False,
    ) -> dict[str, Any]:
        """MESSAGE_CREATE for a user message; `mention_bot` puts the bot in `mentions`."""
        author = self.user_payload(user_id)
        if bot_author:
            author["bot"] = True
        data: dict[str, Any] = {
            "id": self.new_id(),
            "author": author,
            "content": content,
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.bot_user] if mention_bot else [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "nonce": self.new_id(),
        }
        if guild_id is not None:
            data["guild_id"] = guild_id
            data["channel_id"] = self.channel_ids[guild_id]
            member = self.member_payload(author, MEMBER_PERMISSIONS)
            member.pop("user")
            member.pop("permissions")
            data["member"] = member
        else:
            data["channel_id"] = str(int(user_id) + 5)
        return data

    # ------------------------------------------------------------------ REST

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if raw:
                body = json.loads(raw)
        call = Call(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=body,
            headers={k: v for k, v in request.headers.items() if k.lower() != "authorization"},
        )
        authorised = request.headers.get("Authorization", "")
        failure = self._take_failure(path)
        # Interaction callbacks and webhook tokens need no bot token; everything else does.
        needs_auth = not (path.startswith("/interactions/") or path.startswith("/webhooks/"))
        if failure is not None:
            response: web.Response = _json(failure.body, status=failure.status)
            if failure.status == 429:
                # discord.py treats a 429 without `Via` as a Cloudflare ban, not a rate limit.
                response.headers.update(
                    {"Via": "1.1 google", "Retry-After": "1", "X-RateLimit-Scope": "user"}
                )
        elif needs_auth and not authorised.startswith("Bot "):
            response = _json({"message": "401: Unauthorized", "code": 0}, status=401)
        else:
            response = self._route(request.method, path, call)
        call.status = response.status
        # Recorded once answered, so a test that sees the call also sees what it created.
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return response

    def _take_failure(self, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.remaining > 0 and failure.pattern.search(path):
                failure.remaining -= 1
                return failure
        return None

    def _route(self, method: str, path: str, call: Call) -> web.Response:
        body = call.json if isinstance(call.json, dict) else {}
        refused = self._refused_message(method, path, body)
        if refused is not None:
            return refused
        if method == "GET" and path == "/users/@me":
            return _json(self.bot_user)
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json(self._app_info())
        if method == "GET" and path == "/gateway/bot":
            return _json(
                {
                    "url": self.gateway_url,
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": self.max_concurrency,
                    },
                }
            )
        commands = re.fullmatch(r"/applications/(\d+)(?:/guilds/(\d+))?/commands", path)
        if commands:
            scope = commands.group(2)
            if method == "PUT":
                stored = [self._store_command(c, scope) for c in (call.json or [])]
                self.commands[scope] = stored
                return _json(stored)
            if method == "GET":
                return _json(self.commands.get(scope, []))
        callback = re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path)
        if callback and method == "POST":
            if callback.group(1) in self.acknowledged:  # like Discord: one response only
                return _json(
                    {
                        "message": "Interaction has already been acknowledged.",
                        "code": ALREADY_ACKNOWLEDGED,
                    },
                    status=400,
                )
            self.acknowledged.add(callback.group(1))
            return self._callback(callback.group(1), body, call)
        webhook = re.fullmatch(r"/webhooks/(\d+)/([^/]+)(?:/messages/([^/]+))?", path)
        if webhook:
            if method == "DELETE":
                return web.Response(status=204)
            message = self.message_object(body, channel_id="0", guild_id=None)
            if webhook.group(3) and webhook.group(3) != "@original":
                message["id"] = webhook.group(3)
            call.created = message
            return _json(message)
        channel = re.fullmatch(r"/channels/(\d+)/messages", path)
        if channel and method == "POST":
            message = self.message_object(body, channel_id=channel.group(1), guild_id=None)
            if "message_reference" in body:
                message["message_reference"] = body["message_reference"]
            call.created = message
            return _json(message)
        typing = re.fullmatch(r"/channels/(\d+)/typing", path)
        if typing and method == "POST":
            return web.Response(status=204)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _refused_message(self, method: str, path: str, body: dict[str, Any]) -> web.Response | None:
        """HTTP 400 with INVALID_FORM_BODY for a message real Discord refuses (discord_limits)."""
        message: dict[str, Any] | None = None
        if method in ("POST", "PATCH") and (
            path.startswith("/webhooks/") or re.fullmatch(r"/channels/\d+/messages", path)
        ):
            message = body
        elif method == "POST" and path.endswith("/callback") and body.get("type") in (4, 7):
            message = body.get("data") or {}
        errors = form_errors(message) if message is not None else []
        if not errors:
            return None
        self.refused.append(errors)
        return _json(invalid_form_body(errors), status=400)

    def _callback(self, interaction_id: str, body: dict[str, Any], call: Call) -> web.Response:
        kind = body.get("type")
        response: dict[str, Any] = {
            "interaction": {"id": interaction_id, "type": 2},
        }
        if kind in (4, 5, 7):
            data = body.get("data") or {}
            message = self.message_object(data, channel_id="0", guild_id=None)
            response["interaction"]["response_message_id"] = message["id"]
            response["interaction"]["response_message_loading"] = kind == 5
            response["interaction"]["response_message_ephemeral"] = bool(
                int(data.get("flags") or 0) & EPHEMERAL_FLAG
            )
            response["resource"] = {"type": kind, "message": message}
            call.created = message
        elif kind in (6, 8):
            return web.Response(status=204)
        return _json(response)

    def _store_command(self, command: dict[str, Any], guild_id: str | None) -> dict[str, Any]:
        stored = dict(command)
        stored.setdefault("id", self.new_id())
        stored["application_id"] = self.app_id
        stored["version"] = self.new_id()
        stored.setdefault("type", 1)
        stored.setdefault("description", "")
        if guild_id is not None:
            stored["guild_id"] = guild_id
        return stored

    def _command_id(self, name: str, guild_id: str | None) -> str:
        for scope in (guild_id, None):
            for command in self.commands.get(scope, []):
                if command.get("name") == name:
                    return str(command["id"])
        return "810000000000000001"

    def _app_info(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "name": "codebot",
            "icon": None,
            "description": "Medical code lookup",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.user_payload("700000000000000099", "owner"),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "summary": "",
            "interactions_endpoint_url": None,
            "bot": self.bot_user,
        }

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress") == "zlib-stream"
        gateway = _Gateway(ws=ws, compressor=zlib.compressobj() if compress else None)
        async with self._changed:
            self.gateways.append(gateway)
            self._changed.notify_all()
        await self._send(
            gateway, {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_gateway_message(gateway, json.loads(msg.data))
        finally:
            async with self._changed:
                if gateway in self.gateways:
                    self.gateways.remove(gateway)
                self._changed.notify_all()
        return ws

    async def _on_gateway_message(self, gateway: _Gateway, message: dict[str, Any]) -> None:
        op = message.get("op")
        data = message.get("d")
        if op == 1:
            await self._send(gateway, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            assert isinstance(data, dict)
            self.identifies.append(data)
            gateway.intents = int(data.get("intents", 0))
            shard = data.get("shard") or [0, 1]
            gateway.shard = (int(shard[0]), int(shard[1]))
            if not 0 <= gateway.shard[0] < gateway.shard[1]:
                await gateway.ws.close(code=4010, message=b"Invalid shard.")
                return
            await self._send_ready(gateway)
        elif op == 6:
            assert isinstance(data, dict)
            await self._send(gateway, {"op": 0, "t": "RESUMED", "s": next(self._sequence), "d": {}})
            async with self._changed:
                gateway.identified.set()
                self._changed.notify_all()

    async def _send_ready(self, gateway: _Gateway) -> None:
        shard_id, shard_count = gateway.shard
        guilds = [g for g in self.guild_ids if shard_of(g, shard_count) == shard_id]
        ready = {
            "v": 10,
            "user": self.bot_user,
            "application": {"id": self.app_id, "flags": 0},
            "guilds": [{"id": g, "unavailable": True} for g in guilds],
            "session_id": "session-" + self.new_id(),
            "resume_gateway_url": self.gateway_url,
            "shard": [shard_id, shard_count],
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
        }
        await self._send(gateway, {"op": 0, "t": "READY", "s": next(self._sequence), "d": ready})
        for guild_id in guilds:
            await self._send(
                gateway,
                {
                    "op": 0,
                    "t": "GUILD_CREATE",
                    "s": next(self._sequence),
                    "d": self._guild(guild_id),
                },
            )
        async with self._changed:
            gateway.identified.set()
            self._changed.notify_all()

    def _guild(self, guild_id: str) -> dict[str, Any]:
        channel_id = self.channel_ids[guild_id]
        return {
            "id": guild_id,
            "name": f"Coding team {guild_id[-2:]}",
            "icon": None,
            "owner_id": "700000000000000099",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "features": [],
            "roles": [
                {
                    "id": guild_id,
                    "name": "@everyone",
                    "permissions": str(MEMBER_PERMISSIONS),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "channels": [
                {
                    **_text_channel(channel_id, guild_id),
                    "topic": None,
                    "last_message_id": None,
                    "rate_limit_per_user": 0,
                }
            ],
            "threads": [],
            "members": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "member_count": 3,
            "large": False,
            "unavailable": False,
            "joined_at": TIMESTAMP,
            "application_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "splash": None,
            "discovery_splash": None,
            "premium_subscription_count": 0,
            "max_members": 500000,
            "max_video_channel_users": 25,
        }

    def _apply_content_intent(self, data: dict[str, Any]) -> dict[str, Any]:
        """Discord blanks content the bot may not read: no intent, not a DM, not mentioned."""
        privileged = any(g.intents & MESSAGE_CONTENT_INTENT for g in self.gateways)
        is_dm = "guild_id" not in data
        mentioned = any(u.get("id") == self.bot_id for u in data.get("mentions", []))
        if privileged or is_dm or mentioned:
            return data
        return {**data, "content": "", "embeds": [], "attachments": [], "components": []}

    async def _send(self, gateway: _Gateway, payload: dict[str, Any]) -> None:
        if gateway.ws.closed:
            return
        text = json.dumps(payload)
        if gateway.compressor is None:
            await gateway.ws.send_str(text)
            return
        # zlib-stream: one shared deflate context per connection, each message ends with
        # a Z_SYNC_FLUSH marker (00 00 ff ff), which is what discord.py waits for.
        frame = gateway.compressor.compress(text.encode()) + gateway.compressor.flush(
            zlib.Z_SYNC_FLUSH
        )
        await gateway.ws.send_bytes(frame)


def shard_of(guild_id: str | int | None, shard_count: int) -> int:
    """The shard Discord sends a guild's events to (DMs and guildless events: shard 0)."""
    return 0 if guild_id is None else (int(guild_id) >> 22) % shard_count


def guild_on_shard(shard_id: int, shard_count: int, number: int = 0) -> str:
    """A realistic guild snowflake whose events go to `shard_id` of `shard_count`."""
    timestamp_part = 250_000_000_000 // shard_count * shard_count + number * shard_count
    return str(((timestamp_part + shard_id) << 22) | 1)


def _json(body: Any, *, status: int = 200) -> web.Response:
    # Exactly "application/json" as Discord sends it: discord.py compares the header
    # verbatim and treats anything else (aiohttp adds "; charset=utf-8") as text.
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _with_component_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord returns them: each gets a numeric `id` when none was sent."""
    counter = itertools.count(1)

    def walk(component: dict[str, Any]) -> dict[str, Any]:
        copy = dict(component)
        copy.setdefault("id", next(counter))
        if "components" in copy:
            copy["components"] = [walk(child) for child in copy["components"]]
        return copy

    return [walk(row) for row in rows]


def _text_channel(channel_id: str, guild_id: str) -> dict[str, Any]:
    """The guild text channel "coding" as Discord describes it in payloads."""
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": guild_id,
        "name": "coding",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
    }
