"""Discord HTTP interactions: `/code`, autocomplete and buttons without a gateway session.

Discord can POST interactions to an "Interactions Endpoint URL" instead of sending them over
the gateway. `codebot serve discord-http` serves `POST /discord/interactions` (and
`GET /healthz`): stateless, so any number of replicas can sit behind a load balancer.
Mentions and DMs are gateway events and still need `codebot serve discord`.

Every request is verified before anything else: `X-Signature-Ed25519` must be the Ed25519
signature of `X-Signature-Timestamp + body` under the application's public key
(`DISCORD_PUBLIC_KEY`, PyNaCl), and the timestamp within 5 minutes (a captured request
cannot be replayed later); otherwise 401, as Discord requires (it sends such probes when the
URL is saved). Then:

- PING (type 1) is answered with PONG;
- `/code query:…` (type 2) and button/select clicks (type 3) run through the service and are
  answered in the HTTP response (type 4) when ready within `DEFER_AFTER_SECONDS`, otherwise
  deferred (type 5) and finished by editing the original response through the interaction
  webhook (`PATCH /webhooks/{application_id}/{token}/messages/@original`, no bot token);
- autocomplete (type 4) is answered with up to 25 choices (type 8), free.
Request ids, tenants and admin rules are those of the gateway adapter: the interaction id
(a click: message + user + component), the guild (DMs: `dm:<user>`), Manage Server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from adapters.background import Background
from adapters.discord_choices import choice_pairs
from adapters.discord_embeds import OPEN_SELECT_ID, RUN_PREFIX, DiscordMessage, render_reply
from bot.commands import CommandKind, parse
from bot.config import ConfigError, Settings
from bot.model import CodeRef, Reply, Request, UserRef

log = logging.getLogger("codebot.discord.http")

PLATFORM = "discord"
INTERACTIONS_PATH = "/discord/interactions"
HEALTH_PATH = "/healthz"
DEFAULT_PORT = 8080
DEFAULT_API_URL = "https://discord.com/api/v10"
DEFER_AFTER_SECONDS = 2.0  # Discord allows 3 s for the HTTP response
MAX_CLOCK_SKEW_SECONDS = 300
MAX_BODY_BYTES = 1024 * 1024
HTTP_TIMEOUT_SECONDS = 10.0
MANAGE_GUILD = 1 << 5
EPHEMERAL = 1 << 6

# Interaction types (requests) and callback types (responses).
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE = 1, 2, 3, 4
PONG, CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, AUTOCOMPLETE_RESULT = 1, 4, 5, 8


class Service(Protocol):
    """What the endpoint needs from `bot.service.LookupService`."""

    async def handle(self, request: Request) -> Reply:
        """Answer one request; never raises for expected outcomes."""
        ...

    def autocomplete(self, prefix: str, limit: int = 25) -> list[CodeRef]:
        """Codes matching a partly typed query; free and fast."""
        ...

    async def refund(self, request: Request) -> None:
        """Undo the charge of an answer that could not be delivered."""
        ...

    async def delivered(self, request: Request) -> None:
        """The answer reached the platform (the delivery record)."""
        ...


class SignatureVerifier:
    """Discord's Ed25519 request signature check."""

    def __init__(self, public_key_hex: str, *, clock: Callable[[], float] = time.time) -> None:
        try:
            self._key = VerifyKey(bytes.fromhex(public_key_hex))
        except ValueError:
            raise ConfigError(
                "DISCORD_PUBLIC_KEY must be the application's 64-hex-digit key"
            ) from None
        self._clock = clock

    def verify(self, signature_hex: str, timestamp: str, body: bytes) -> bool:
        """True for a fresh request signed by Discord."""
        if not timestamp.isdigit() or len(timestamp) > 12:
            return False
        if abs(self._clock() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
            return False
        try:
            signature = bytes.fromhex(signature_hex)
            self._key.verify(timestamp.encode() + body, signature)
        except (ValueError, BadSignatureError):
            return False
        return True


class DiscordInteractions:
    """The endpoint: verification, dispatch by interaction type, answers and follow-ups."""

    def __init__(
        self,
        settings: Settings,
        service: Service,
        *,
        defer_after: float = DEFER_AFTER_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.discord_public_key:
            raise ConfigError(
                "DISCORD_PUBLIC_KEY is not set (Developer Portal, General Information)"
            )
        self.settings = settings
        self.service = service
        self.defer_after = defer_after
        self.verifier = SignatureVerifier(settings.discord_public_key, clock=clock)
        self.api_url = (settings.discord_api_url or DEFAULT_API_URL).rstrip("/")
        self._background = Background(HTTP_TIMEOUT_SECONDS)

    def web_app(self) -> web.Application:
        """The aiohttp application (`POST /discord/interactions`, `GET /healthz`)."""
        application = web.Application(client_max_size=MAX_BODY_BYTES)
        application.router.add_post(INTERACTIONS_PATH, self.handle_http)
        application.router.add_get(HEALTH_PATH, self._health)
        application.on_cleanup.append(self._cleanup)
        return application

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "platform": PLATFORM})

    async def _cleanup(self, _app: web.Application) -> None:
        await self._background.drain(HTTP_TIMEOUT_SECONDS)
        await self._background.close_session()

    # ------------------------------------------------------------ HTTP

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """Verify, parse and answer one interaction; never a traceback to Discord."""
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "too large"}, status=413)
        signature = request.headers.get("X-Signature-Ed25519", "")
        timestamp = request.headers.get("X-Signature-Timestamp", "")
        if not self.verifier.verify(signature, timestamp, body):
            return web.json_response({"error": "invalid request signature"}, status=401)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return web.json_response({"error": "not an interaction"}, status=400)
        try:
            return await self._dispatch(request, payload)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("discord interaction failed (ref %s)", ref)
            return web.json_response({"error": "internal", "ref": ref}, status=500)

    async def _dispatch(self, http: web.Request, payload: dict[str, Any]) -> web.StreamResponse:
        kind = payload.get("type")
        if kind == PING:
            return web.json_response({"type": PONG})
        if kind == AUTOCOMPLETE:
            typed = _option(payload, "query")
            pairs = choice_pairs(self.service.autocomplete, typed)
            choices = [{"name": name, "value": value} for name, value in pairs]
            return web.json_response({"type": AUTOCOMPLETE_RESULT, "data": {"choices": choices}})
        if kind == APPLICATION_COMMAND:
            text = _option(payload, "query")
            return await self._answer(http, payload, text, str(payload.get("id", "")))
        if kind == MESSAGE_COMPONENT:
            data = payload.get("data") or {}
            custom_id = str(data.get("custom_id") or "")
            values = data.get("values") or []
            if custom_id.startswith(RUN_PREFIX):
                text = custom_id[len(RUN_PREFIX) :]
            elif custom_id == OPEN_SELECT_ID and values:
                text = str(values[0])
            else:
                return web.json_response({"error": "unknown component"}, status=400)
            message_id = (payload.get("message") or {}).get("id") or payload.get("id")
            # one charge per (message, user, component, choice): a double click is a replay
            request_id = f"c:{message_id}:{_user(payload).get('id')}:{custom_id}:{text}"
            return await self._answer(http, payload, text, request_id[:200])
        return web.json_response({"error": "unsupported interaction type"}, status=400)

    # ------------------------------------------------------------ answering

    def _request(self, payload: dict[str, Any], text: str, request_id: str) -> Request:
        user = _user(payload)
        user_id = str(user.get("id") or "")
        guild_id = payload.get("guild_id")
        if guild_id:
            tenant = str(guild_id)
            permissions = str((payload.get("member") or {}).get("permissions") or "0")
            is_admin = permissions.isdigit() and bool(int(permissions) & MANAGE_GUILD)
        else:
            tenant, is_admin = f"dm:{user_id}", False
        name = str(user.get("global_name") or user.get("username") or "")
        ref = UserRef(PLATFORM, tenant, user_id, name[:100])
        configured = f"{PLATFORM}:{tenant}:{user_id}" in self.settings.admins
        channel = str(payload.get("channel_id") or "")
        return Request(ref, text, channel, is_admin or configured, request_id)

    async def _answer(
        self, http: web.Request, payload: dict[str, Any], text: str, request_id: str
    ) -> web.StreamResponse:
        request = self._request(payload, text, request_id)
        task = asyncio.ensure_future(self.service.handle(request))
        done, _ = await asyncio.wait({task}, timeout=self.defer_after)
        if task in done:
            reply = task.result()
            message = render_reply(reply, ephemeral=True)
            response = web.json_response({"type": CHANNEL_MESSAGE, "data": message.to_payload()})
            try:
                await response.prepare(http)
                await response.write_eof()
            except (ConnectionError, RuntimeError):
                if not reply.replayed:
                    await self.service.refund(request)  # Discord never got the answer
                raise
            await self.service.delivered(request)
            return response
        # Slow: acknowledge now (a share defers publicly), finish through the webhook.
        public = parse(text).kind is CommandKind.SHARE
        self._background.spawn(self._follow_up(payload, request, task))
        data = {} if public else {"flags": EPHEMERAL}
        return web.json_response({"type": DEFERRED_CHANNEL_MESSAGE, "data": data})

    async def _follow_up(
        self, payload: dict[str, Any], request: Request, task: asyncio.Future[Reply]
    ) -> None:
        reply = await task
        message: DiscordMessage = render_reply(reply, ephemeral=True)
        body = message.to_payload()
        body.pop("flags", None)  # fixed by the deferral
        url = (
            f"{self.api_url}/webhooks/{payload.get('application_id')}/"
            f"{payload.get('token')}/messages/@original"
        )
        session = await self._background.session()
        try:
            async with session.patch(url, json=body) as response:
                ok = response.status < 300
                if not ok:
                    log.warning("discord follow-up answered HTTP %s", response.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("discord follow-up failed: %s", type(error).__name__)
            ok = False
        if ok:
            await self.service.delivered(request)
        elif not reply.replayed:
            await self.service.refund(request)


def _user(payload: dict[str, Any]) -> dict[str, Any]:
    """The acting user: `member.user` in a server, `user` in a DM."""
    member = payload.get("member") or {}
    user = member.get("user") or payload.get("user") or {}
    return user if isinstance(user, dict) else {}


def _option(payload: dict[str, Any], name: str) -> str:
    """A string option of the command (autocomplete: what is typed so far)."""
    for option in (payload.get("data") or {}).get("options") or []:
        if isinstance(option, dict) and option.get("name") == name:
            return str(option.get("value") or "")[:4000]
    return ""


async def serve_discord_http(
    settings: Settings,
    service: Service,
    *,
    host: str = "0.0.0.0",
    port: int = DEFAULT_PORT,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the endpoint until SIGTERM/SIGINT (or `stop`); prints `listening on HOST:PORT`."""
    import signal

    endpoint = DiscordInteractions(settings, service)
    runner = web.AppRunner(endpoint.web_app(), access_log=None)
    await runner.setup()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, stop.set)
                installed.append(signum)
            except (NotImplementedError, RuntimeError):
                pass
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = next(
            (int(a[1]) for a in runner.addresses if isinstance(a, tuple) and len(a) >= 2), port
        )
        log.info("discord interactions endpoint ready on %s:%s%s", host, bound, INTERACTIONS_PATH)
        print(f"listening on {host}:{bound}", flush=True)
        await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await runner.cleanup()


async def run_discord_http(settings: Settings, *, host: str, port: int) -> int:
    """`codebot serve discord-http`: open the service and serve; returns the exit status."""
    from bot.app import open_service

    try:
        async with open_service(settings, warm=True) as service:
            await serve_discord_http(settings, service, host=host, port=port)
    except ConfigError as error:
        log.error("discord-http: %s", error)
        print(f"codebot: {error}", flush=True)
        return 1
    return 0
