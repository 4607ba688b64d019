"""Slack adapter: slack-bolt AsyncApp over `LookupService` (DESIGN.md §2, §6, §7).

HTTP mode (default): an aiohttp server with `/slack/events` (slash command, Events API,
interactivity; every request verified with the signing secret by bolt) and `/healthz`.
Socket Mode when `SLACK_APP_TOKEN` is set (the HTTP server then only serves `/healthz`,
plus `/slack/events` if a signing secret is also configured).

What Slack sends becomes a neutral `Request`; the `Reply` becomes Block Kit
(adapters/slack_blocks.py). Slash commands are answered in the ack body when the answer is
ready within the ack budget, otherwise acked at once and answered through `response_url`.
Mentions are answered in a thread and DMs in the DM, both with `chat.postMessage`.

Charging once: every request carries a stable id (slash command: trigger_id; event:
event_id; button: message ts + action id + user), so the quota ledger never charges a
Slack retry or a double click twice; an in-process memory of event ids also keeps a retried
event from being posted twice, and an event retry that reaches another process (sharing the
state DB) is not posted when the service reports the request as already processed
(`Reply.replayed`: charged, or claimed by a free command, anywhere). A replayed slash
command gets an empty ack. Every posted answer is recorded (`service.delivered`), so a
charge whose process died before answering is refunded at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.background import Background
from adapters.ops_http import add_ops_routes
from adapters.slack_blocks import ACTION_PREFIX, error_message, reply_to_message
from adapters.slack_guard import SlackRequestGuard
from adapters.slack_oauth import (
    INSTALL_PATH,
    REDIRECT_PATH,
    SlackConfigError,
    SlackMode,
    check_bolt_mode,
    oauth_app_options,
    slack_mode,
)
from adapters.slack_urls import trusted_response_url
from bot.commands import CommandKind, parse
from bot.config import Settings
from bot.logsafe import safe
from bot.model import Reply, Request, UserRef
from bot.service import error_reply
from bot.state.installations import Installations, open_installations

log = logging.getLogger("codebot.slack")

PLATFORM = "slack"
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEFAULT_PORT = 3000

ACK_BUDGET_SECONDS = 2.0  # Slack wants the ack within 3 s; keep room for the network
# Commands whose answer depends on the workspace admin flag (admin controls, note edits).
ADMIN_SENSITIVE_COMMANDS = frozenset({CommandKind.ADMIN, CommandKind.NOTE})
ADMIN_CACHE_SECONDS = 300.0  # users.info answers are reused this long
ADMIN_FAILURE_CACHE_SECONDS = 30.0  # after a failed users.info, do not hammer the API
EVENT_MEMORY_SECONDS = 3600.0  # Slack retries an event 3 times within minutes
CLICK_MEMORY_SECONDS = 10.0  # a double click arrives within a second or two
RETRY_AFTER_CAP_SECONDS = 10.0  # never sleep longer than this on a rate limit
HTTP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_GRACE_SECONDS = 10.0
MAX_MEMORY_ENTRIES = 50_000  # bound the dedupe/admin memories under floods

# Errors after which the bot cannot post where it was asked: tell the user privately.
_CANNOT_POST = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action"}
_CANNOT_POST_TEXT = (
    "I couldn't post my answer in this conversation ({error}). Invite me to the channel "
    "(`/invite @codebot`) or use `/code` here, which answers privately."
)


class ReplyService(Protocol):
    """What the adapter needs from the core: `bot.service.LookupService` satisfies it."""

    async def handle(self, request: Request) -> Reply:
        """Answer one request; never raises for expected outcomes."""
        ...

    async def delivered(self, request: Request) -> None:
        """The answer was posted (the delivery record; see bot/service.py)."""
        ...

    async def readiness(self) -> dict[str, str]:
        """ "ok" or the problem for the state and code databases (`/readyz`)."""
        ...


# ---------------------------------------------------------------- small helpers


class _Memory:
    """A small TTL set/dict with a size bound (dedupe of event ids, users.info cache)."""

    def __init__(self, ttl: float, max_entries: int = MAX_MEMORY_ENTRIES) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._items[key]
            return None
        return entry[1]

    def put(self, key: str, value: Any, ttl: float | None = None) -> None:
        if len(self._items) >= self._max:
            self._evict()
        self._items[key] = (time.monotonic() + (self._ttl if ttl is None else ttl), value)

    def add_new(self, key: str) -> bool:
        """Remember `key`; False when it was already remembered (a duplicate)."""
        if self.get(key) is not None:
            return False
        self.put(key, True)
        return True

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, (expiry, _) in self._items.items() if expiry < now]:
            del self._items[key]
        while len(self._items) >= self._max:  # still full: drop the oldest inserted
            del self._items[next(iter(self._items))]


def unescape_slack(text: str) -> str:
    """Undo Slack's `&amp;`/`&lt;`/`&gt;` escaping of what the user typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def tenant_of(team_id: str, enterprise_id: str | None) -> str:
    """Tenant key: the workspace, qualified by the Enterprise Grid org when there is one."""
    return f"{enterprise_id}:{team_id}" if enterprise_id else team_id


def api_base_url(url: str) -> str:
    """slack_sdk joins `base_url + method`, so an override must end with `/`."""
    if not url:
        return "https://slack.com/api/"
    return url if url.endswith("/") else url + "/"


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    """Seconds to wait from a Retry-After header (any case), capped."""
    for key, value in (headers or {}).items():
        if str(key).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return min(max(float(raw), 0.0), RETRY_AFTER_CAP_SECONDS)
            except (TypeError, ValueError):
                break
    return 1.0


@dataclass(frozen=True)
class _Origin:
    """Where an answer goes: response_url (commands, buttons) or a channel (+ thread).

    `token` is the bot token of the request's workspace (bolt's `context`): every Web API
    call about this request uses it, so with OAuth each workspace is answered as itself.
    """

    channel: str = ""
    user: str = ""
    thread_ts: str = ""
    response_url: str = ""
    token: str = field(default="", repr=False)


@dataclass(frozen=True)
class _Turn:
    """What is needed to build a Request once the user's admin status is known."""

    team_id: str  # the workspace that installed the app: its quota pays
    enterprise_id: str | None
    user_name: str
    text: str
    request_id: str
    user_team: str = ""  # the user's own workspace when Slack says (Slack Connect)
    org_install: bool = False  # an Enterprise Grid org-wide install: the org is the tenant

    @property
    def tenant(self) -> str:
        """The tenant charged and shown: the installing workspace (or org)."""
        if self.org_install and self.enterprise_id:
            return self.enterprise_id
        return tenant_of(self.team_id, self.enterprise_id)


# ---------------------------------------------------------------- the adapter


class SlackAdapter:
    """The bolt app, its listeners and the state they share (caches, background tasks)."""

    def __init__(
        self,
        settings: Settings,
        service: ReplyService,
        *,
        ack_budget: float = ACK_BUDGET_SECONDS,
    ) -> None:
        self.mode = slack_mode(settings)  # one workspace or OAuth; ambiguity is refused
        self.settings = settings
        self.service = service
        self.ack_budget = ack_budget
        self.installations: Installations | None = None
        self.client = AsyncWebClient(
            token=settings.slack_bot_token or None,
            base_url=api_base_url(settings.slack_api_url),
            timeout=int(HTTP_TIMEOUT_SECONDS),
            logger=logging.getLogger("codebot.slack.api"),
        )
        oauth: dict[str, Any] = {}
        if self.mode is SlackMode.OAUTH:
            self.installations = open_installations(settings)
            oauth = oauth_app_options(settings, self.installations, self.client)
        self.app = AsyncApp(
            name="codebot",
            client=self.client,
            signing_secret=settings.slack_signing_secret,
            # We decide ourselves when to ack (answer in the ack body when ready), and
            # without this bolt polls for the ack every 10 ms, which costs latency.
            process_before_response=True,
            request_verification_enabled=bool(settings.slack_signing_secret),
            # Built-in middleware for features this app does not use: custom workflow steps
            # (function_executed tokens) and AI-assistant threads (conversation kwargs on
            # event listeners). Signature verification, the timestamp check, ssl_check,
            # url_verification and ignoring our own events all stay on.
            attaching_function_token_enabled=False,
            attaching_conversation_kwargs_enabled=False,
            logger=logging.getLogger("codebot.slack.bolt"),
            **oauth,
        )
        check_bolt_mode(self.mode, self.app.oauth_flow)
        self._events = _Memory(EVENT_MEMORY_SECONDS)
        self._clicks = _Memory(CLICK_MEMORY_SECONDS)
        self._admins = _Memory(ADMIN_CACHE_SECONDS)
        self._admin_lookups: dict[str, asyncio.Future[bool]] = {}
        self._background = Background(HTTP_TIMEOUT_SECONDS)
        self._guard = SlackRequestGuard(settings.slack_signing_secret)
        self._register()

    # ------------------------------------------------------------ wiring

    def _register(self) -> None:
        # Any slash command routed to this app speaks the /code grammar (so a workspace
        # may name it /code-dev or /icd without a code change).
        self.app.command(re.compile(r"^/"))(self._on_command)
        self.app.action(re.compile("^" + re.escape(ACTION_PREFIX)))(self._on_action)
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        if self.mode is SlackMode.OAUTH:
            # app_uninstalled / tokens_revoked delete the installation (usage data stays)
            self.app.enable_token_revocation_listeners()
        self.app.error(self._on_error)

    def web_app(self) -> web.Application:
        """The aiohttp application: `/slack/events` (when a signing secret is set), `/healthz`."""
        application = web.Application(client_max_size=1024 * 1024)
        application[ADAPTER_KEY] = self
        application.router.add_get(HEALTH_PATH, self._health)
        add_ops_routes(application, self.service)  # /readyz, /metrics
        if self.settings.slack_signing_secret:
            application.router.add_post(EVENTS_PATH, self._dispatch_http)
        if self.app.oauth_flow is not None:
            application.router.add_get(INSTALL_PATH, self._dispatch_oauth)
            application.router.add_get(REDIRECT_PATH, self._dispatch_oauth)
        application.on_cleanup.append(self._cleanup)
        return application

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "platform": PLATFORM})

    async def _dispatch_http(self, request: web.Request) -> web.Response:
        try:
            # size, signature and form are checked before bolt parses (or logs) anything
            admitted = await self._guard.admit(request)
            if isinstance(admitted, web.Response):
                return admitted
            bolt_response = await self.app.async_dispatch(admitted)
            return await _to_aiohttp_response(bolt_response)
        except Exception:
            # bolt handles listener errors itself; this is the last line so a bug never
            # takes the server down nor shows a traceback to Slack
            ref = uuid.uuid4().hex[:8]
            log.exception("slack request failed (ref %s)", ref)
            return web.json_response({"ok": False, "ref": ref}, status=500)

    async def _dispatch_oauth(self, request: web.Request) -> web.Response:
        """The "Add to Slack" page and Slack's OAuth callback, through bolt's OAuth flow."""
        flow = self.app.oauth_flow
        if flow is None:  # routes exist only with a flow; keep mypy and readers sure
            raise web.HTTPNotFound()
        try:
            bolt_request = AsyncBoltRequest(
                body="", query=request.query_string, headers=dict(request.headers)
            )
            if request.path == INSTALL_PATH:
                bolt_response = await flow.handle_installation(bolt_request)
            else:
                bolt_response = await flow.handle_callback(bolt_request)
            return await to_aiohttp_response(bolt_response)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("slack oauth request failed (ref %s)", ref)
            return web.Response(status=500, text=f"Installation failed (ref {ref}).")

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error(
            "listener failed for %s: %s",
            safe(body.get("type") or body.get("command"), 40),
            type(error).__name__,
        )

    async def _cleanup(self, _app: web.Application) -> None:
        await self.close()

    async def close(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Let answers in flight finish (up to `grace` seconds), then release connections."""
        for task in await self._background.drain(grace):
            task.cancel()
        await self._background.close_session()
        if self.installations is not None:
            await self.installations.close()

    # ------------------------------------------------------------ identity

    def _host(
        self, context: Mapping[str, Any], team_id: str, enterprise_id: str | None
    ) -> tuple[str, str | None, bool]:
        """(team, enterprise, org-wide?) of the installation answering this request.

        With OAuth that is the installation bolt authorized the request with (its auth.test),
        so a Slack Connect user is charged to the workspace that installed codebot, never
        to their own; with one bot token it is the request's workspace.
        """
        if self.mode is not SlackMode.OAUTH:
            return team_id, enterprise_id, False
        result = context.get("authorize_result")
        team = getattr(result, "team_id", None) or team_id
        enterprise = getattr(result, "enterprise_id", None) or enterprise_id
        return str(team or ""), enterprise, bool(context.get("is_enterprise_install"))

    async def _user(self, turn: _Turn, origin: _Origin) -> tuple[UserRef, bool]:
        """The asking user, and whether they are an admin of the installing workspace.

        Only admin commands and note edits consult the admin flag, so lookups and searches
        never wait for (nor spend rate limit on) a `users.info` call. A user of another
        organisation (Slack Connect) is never an admin here, whatever they are at home.
        """
        user = UserRef(PLATFORM, turn.tenant, origin.user, turn.user_name)
        if parse(turn.text).kind not in ADMIN_SENSITIVE_COMMANDS:
            return user, False
        if turn.user_team and not turn.org_install and turn.user_team != turn.team_id:
            log.info("admin refused: the user's workspace is not the installing one")
            return user, False
        return user, await self._is_admin(user, turn, origin.token)

    async def _is_admin(self, user: UserRef, turn: _Turn, token: str) -> bool:
        """Workspace admin/owner per users.info, cached; lookups for one user are shared."""
        key = f"{user.tenant_id}:{user.user_id}"
        cached = self._admins.get(key)
        if cached is not None:
            return bool(cached)
        running = self._admin_lookups.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._admin_lookups[key] = future
        try:
            is_admin, ttl = await self._fetch_admin(user.user_id, turn, token)
            self._admins.put(key, is_admin, ttl)
            future.set_result(is_admin)
            return is_admin
        finally:
            if not future.done():
                future.set_result(False)
            del self._admin_lookups[key]

    async def _fetch_admin(self, user_id: str, turn: _Turn, token: str) -> tuple[bool, float]:
        try:
            response = await self.client.api_call(
                "users.info", http_verb="GET", params={"user": user_id}, headers=_auth(token)
            )
        except SlackApiError as error:
            log.warning("users.info failed: %s", error.response.get("error"))
            return False, ADMIN_FAILURE_CACHE_SECONDS
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("users.info failed: %s", type(error).__name__)
            return False, ADMIN_FAILURE_CACHE_SECONDS
        profile = response.get("user") or {}
        if not _same_organisation(profile, turn):
            log.info("admin refused: a user of another organisation (Slack Connect)")
            return False, ADMIN_CACHE_SECONDS
        return bool(profile.get("is_admin") or profile.get("is_owner")), ADMIN_CACHE_SECONDS

    # ------------------------------------------------------------ the core call

    async def _answer(self, request: Request) -> Reply:
        """The service's reply; an unexpected exception becomes an error reply (logged)."""
        try:
            return await self.service.handle(request)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("service failed (ref %s)", ref)
            return error_reply(ref)

    # ------------------------------------------------------------ slash command

    async def _on_command(
        self,
        ack: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        context: Mapping[str, Any],
    ) -> None:
        trigger = body.get("trigger_id") or uuid.uuid4().hex
        origin = _Origin(
            channel=str(body.get("channel_id", "")),
            user=str(body.get("user_id", "")),
            response_url=str(body.get("response_url", "")),
            token=str(context.get("token") or ""),
        )
        team, enterprise, org_install = self._host(
            context, str(body.get("team_id", "")), body.get("enterprise_id")
        )
        turn = _Turn(
            team_id=team,
            enterprise_id=enterprise,
            user_name=str(body.get("user_name", "")),
            text=unescape_slack(str(body.get("text", ""))),
            request_id=f"slack:cmd:{trigger}",
            org_install=org_install,
        )
        # users.info and the answer together must fit the ack budget; whatever is late is
        # delivered through response_url instead.
        task = asyncio.ensure_future(self._turn_reply(turn, origin))
        done, _pending = await asyncio.wait({task}, timeout=self.ack_budget)
        if task in done:
            request, reply = task.result()
            if reply.replayed:
                # a replayed slash command (same trigger id) that some process already
                # answered: acknowledge, show nothing, change nothing
                await ack()
                return
            message = reply_to_message(reply)
            await ack(response_type="in_channel" if reply.public else "ephemeral", **message)
            await self.service.delivered(request)
            return
        await ack()
        self._background.spawn(self._deliver_later(task, origin))

    async def _deliver_later(
        self, task: asyncio.Future[tuple[Request, Reply]], origin: _Origin
    ) -> None:
        request, reply = await task
        if reply.replayed:
            return
        await self._deliver(reply, origin)
        await self.service.delivered(request)

    # ------------------------------------------------------------ buttons

    async def _on_action(
        self,
        ack: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        context: Mapping[str, Any],
    ) -> None:
        await ack()  # a button ack carries no content; the answer follows separately
        actions = body.get("actions") or []
        if not actions:
            return
        action = actions[0]
        action_id = str(action.get("action_id", ""))
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        slack_user = body.get("user") or {}
        user_id = str(slack_user.get("id", ""))
        message_ts = str(container.get("message_ts") or action.get("action_ts") or "")
        request_id = f"slack:act:{channel}:{message_ts}:{action_id}:{user_id}"
        if not self._clicks.add_new(request_id):
            log.info("double click ignored (%s)", safe(action_id))
            return
        team_id = str((body.get("team") or {}).get("id") or slack_user.get("team_id") or "")
        origin = _Origin(
            channel=channel,
            user=user_id,
            response_url=str(body.get("response_url", "")),
            thread_ts=str((body.get("message") or {}).get("thread_ts") or ""),
            token=str(context.get("token") or ""),
        )
        team, enterprise, org_install = self._host(
            context, team_id, (body.get("enterprise") or {}).get("id")
        )
        turn = _Turn(
            team_id=team,
            enterprise_id=enterprise,
            user_name=str(slack_user.get("username", "")),
            text=str(action.get("value", "")),
            request_id=request_id,
            user_team=str(slack_user.get("team_id") or ""),
            org_install=org_install,
        )
        # process_before_response: the HTTP ack leaves when this listener returns, so the
        # users.info call and the answer run in the background
        self._background.spawn(self._answer_and_deliver(turn, origin))

    async def _turn_reply(self, turn: _Turn, origin: _Origin) -> tuple[Request, Reply]:
        """Identify the user (admin flag) and answer; never raises."""
        try:
            user, is_admin = await self._user(turn, origin)
        except Exception:
            log.exception("could not identify the user")
            user, is_admin = UserRef(PLATFORM, turn.tenant, origin.user), False
        request = Request(
            user=user,
            text=turn.text,
            channel_id=origin.channel,
            is_admin=is_admin,
            request_id=turn.request_id,
        )
        return request, await self._answer(request)

    async def _answer_and_deliver(self, turn: _Turn, origin: _Origin) -> None:
        request, reply = await self._turn_reply(turn, origin)
        if reply.replayed:
            # Slack retried an event, or a click reached a second process, that some
            # process sharing the state DB already charged or answered: it answers it,
            # so posting again would double the answer.
            log.info("%s was already processed elsewhere; not posting", safe(turn.request_id))
            return
        await self._deliver(reply, origin)
        await self.service.delivered(request)

    # ------------------------------------------------------------ events

    async def _on_mention(
        self,
        ack: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        event: dict[str, Any],
        context: Mapping[str, Any],
    ) -> None:
        await ack()  # Events API: ack first, answer after (Slack retries slow acks)
        # answered in the mention's thread, or in a new thread under the mention
        self._event_turn(body, event, context, str(event.get("thread_ts") or event.get("ts") or ""))

    async def _on_message(
        self,
        ack: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        event: dict[str, Any],
        context: Mapping[str, Any],
    ) -> None:
        await ack()
        # Only direct messages: channel messages reach us as app_mention when addressed.
        if event.get("channel_type") == "im":
            # stay in a thread if asked there
            self._event_turn(body, event, context, str(event.get("thread_ts") or ""))

    def _event_turn(
        self,
        body: Mapping[str, Any],
        event: Mapping[str, Any],
        context: Mapping[str, Any],
        thread_ts: str,
    ) -> None:
        """Answer a mention or DM in the background, once per event id."""
        bot_user_id = context.get("bot_user_id")
        if _is_noise(event, bot_user_id):
            return
        text = _strip_bot_mention(str(event.get("text", "")), bot_user_id)
        origin = _Origin(
            channel=str(event.get("channel", "")),
            user=str(event.get("user", "")),
            thread_ts=thread_ts,
            token=str(context.get("token") or ""),
        )
        event_id = str(body.get("event_id") or "")
        if not event_id:
            event_id = f"{event.get('channel')}:{event.get('ts')}"
        if not self._events.add_new(event_id):
            log.info("event %s already answered (Slack retry); not posting again", safe(event_id))
            return
        team, enterprise, org_install = self._host(
            context, str(body.get("team_id") or event.get("team") or ""), body.get("enterprise_id")
        )
        turn = _Turn(
            team_id=team,
            enterprise_id=enterprise,
            user_name="",
            text=unescape_slack(text),
            request_id=f"slack:evt:{event_id}",
            # a shared channel's event names the user's own workspace
            user_team=str(event.get("user_team") or ""),
            org_install=org_install,
        )
        # Events are posted by us (no ack body, no response_url): a retry that reached
        # another process is answered only by the process that charged it first.
        self._background.spawn(self._answer_and_deliver(turn, origin))

    # ------------------------------------------------------------ delivery

    async def _deliver(self, reply: Reply, origin: _Origin) -> None:
        """Send a reply where it belongs; API failures are logged or told to the user."""
        try:
            message = reply_to_message(reply)
            if origin.response_url:
                if not await self._post_response_url(origin, message, public=reply.public):
                    await self._response_url_fallback(origin, message, public=reply.public)
            else:
                await self._post_in_channel(origin, message)
        except Exception:
            log.exception("could not deliver a reply")  # never let a task die noisily

    async def _response_url_fallback(
        self, origin: _Origin, message: dict[str, Any], *, public: bool
    ) -> None:
        """The response_url failed (expired, used up, gone): answer through the Web API with
        the workspace's own token, privately to the user unless the answer is public."""
        if not (origin.channel and origin.user):
            return
        if public:
            await self._post_in_channel(origin, message)
            return
        arguments: dict[str, Any] = {"channel": origin.channel, "user": origin.user, **message}
        if origin.thread_ts:
            arguments["thread_ts"] = origin.thread_ts
        if await self._call("chat.postEphemeral", arguments, origin.token):
            log.warning("could not answer through chat.postEphemeral either")

    async def _post_response_url(
        self, origin: _Origin, message: dict[str, Any], *, public: bool
    ) -> bool:
        """Post to the request's response_url; False when it did not take the answer."""
        if not self._trusted_response_url(origin.response_url):
            log.warning("refusing a response_url outside Slack")
            return True  # never a fallback for a forged URL: nothing is sent anywhere
        payload = {
            **message,
            "response_type": "in_channel" if public else "ephemeral",
            "replace_original": False,
        }
        if origin.thread_ts:
            payload["thread_ts"] = origin.thread_ts
        session = await self._background.session()
        for attempt in (1, 2):
            try:
                async with session.post(origin.response_url, json=payload) as response:
                    if response.status == 429 and attempt == 1:
                        await asyncio.sleep(_retry_after(response.headers))
                        continue
                    if response.status >= 400:
                        log.warning("response_url answered HTTP %s", response.status)
                        return False
                    return True
            except (aiohttp.ClientError, TimeoutError) as error:
                log.warning("response_url post failed: %s", type(error).__name__)
                return False
        return False

    def _trusted_response_url(self, url: str) -> bool:
        # only Slack's hooks origin, or the exact origin of SLACK_API_URL (adapters/slack_urls)
        return trusted_response_url(url, self.settings.slack_api_url)

    async def _post_in_channel(self, origin: _Origin, message: dict[str, Any]) -> None:
        arguments: dict[str, Any] = {"channel": origin.channel, **message}
        if origin.thread_ts:
            arguments["thread_ts"] = origin.thread_ts
        error = await self._call("chat.postMessage", arguments, origin.token)
        if error in _CANNOT_POST and origin.user:
            notice = error_message(_CANNOT_POST_TEXT.format(error=error))
            fallback = {"channel": origin.channel, "user": origin.user, **notice}
            if await self._call("chat.postEphemeral", fallback, origin.token):
                log.warning("could not tell user about %s either", error)

    async def _call(self, method: str, arguments: dict[str, Any], token: str = "") -> str:
        """Call a Web API method with the workspace's `token`; retry once after a rate limit.

        Returns "" or the error.
        """
        for attempt in (1, 2):
            try:
                await self.client.api_call(method, json=arguments, headers=_auth(token))
                return ""
            except SlackApiError as failure:
                error = str(failure.response.get("error") or "unknown_error")
                status = getattr(failure.response, "status_code", 0)
                if (status == 429 or error == "ratelimited") and attempt == 1:
                    delay = _retry_after(getattr(failure.response, "headers", None))
                    log.warning("%s rate limited; retrying in %.1f s", method, delay)
                    await asyncio.sleep(delay)
                    continue
                log.warning("%s failed: %s", method, error)
                return error
            except (aiohttp.ClientError, TimeoutError) as failure:
                log.warning("%s failed: %s", method, type(failure).__name__)
                return "network_error"
        return "ratelimited"


ADAPTER_KEY = web.AppKey("codebot_slack_adapter", SlackAdapter)


async def _to_aiohttp_response(bolt_response: BoltResponse) -> web.Response:
    """bolt's response as aiohttp's: the same status, body and Content-Type as bolt's own
    `to_aiohttp_response`, without its regex and cookie handling for the usual response
    (only a Content-Type header); anything else (cookies, extra headers) goes through bolt's.
    """
    headers = bolt_response.headers
    if len(headers) != 1 or "content-type" not in headers:
        return await to_aiohttp_response(bolt_response)
    content_type = headers["content-type"][0]
    if content_type.endswith(";charset=utf-8"):  # as bolt sets it; aiohttp adds no charset
        content_type = content_type[: -len(";charset=utf-8")]
    return web.Response(
        status=bolt_response.status,
        body=bolt_response.body.encode("utf-8"),
        content_type=content_type,
    )


def _auth(token: str) -> dict[str, str]:
    """Per-request Authorization: the workspace's token (none: the client's own token)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _same_organisation(profile: Mapping[str, Any], turn: _Turn) -> bool:
    """Is this users.info profile a member of the installing workspace (or org)?"""
    if turn.org_install:
        home_org = (profile.get("enterprise_user") or {}).get("enterprise_id")
        return bool(turn.enterprise_id) and home_org == turn.enterprise_id
    return profile.get("team_id") == turn.team_id


def _is_noise(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """Events not to answer: edits, joins and other subtypes, bots (ourselves included)."""
    return bool(
        event.get("subtype")
        or event.get("bot_id")
        or event.get("bot_profile")
        or not event.get("user")
        or (bot_user_id and event.get("user") == bot_user_id)
    )


def _strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    """Remove `<@BOT>` (or, not knowing our id, a leading mention) from a message."""
    if bot_user_id:
        return re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text).strip()
    return re.sub(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>", " ", text).strip()


# ---------------------------------------------------------------- factories and serving


def build_slack_app(settings: Settings, service: ReplyService) -> AsyncApp:
    """The configured bolt AsyncApp (listeners registered) for `settings` and `service`."""
    return SlackAdapter(settings, service).app


def make_web_app(
    settings: Settings, service: ReplyService, *, ack_budget: float = ACK_BUDGET_SECONDS
) -> web.Application:
    """The aiohttp application serving `/slack/events` and `/healthz` (tests start it on port 0).

    `app[ADAPTER_KEY]` is the `SlackAdapter`; answers in flight are drained on cleanup.
    """
    return SlackAdapter(settings, service, ack_budget=ack_budget).web_app()


def _quiet_sdk_loggers() -> None:
    # bolt/sdk debug logs include request bodies; keep them at INFO or above in production
    for name in (
        "slack_bolt",
        "slack_sdk",
        "codebot.slack.bolt",
        "codebot.slack.api",
        "codebot.slack.socket",
    ):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))


async def serve_slack(
    settings: Settings,
    service: ReplyService,
    *,
    port: int = DEFAULT_PORT,
    host: str = "0.0.0.0",
    stop: asyncio.Event | None = None,
) -> None:
    """Serve Slack until SIGTERM/SIGINT (or `stop` is set), then shut down gracefully.

    Prints `listening on HOST:PORT` (the bound port, so `port=0` works) once ready.
    Socket Mode connects as well when `settings.slack_app_token` is set.
    """
    _quiet_sdk_loggers()
    adapter = SlackAdapter(settings, service)
    runner = web.AppRunner(
        adapter.web_app(), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS
    )
    await runner.setup()
    socket_handler: Any = None
    connecting: asyncio.Future[None] | None = None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    try:
        # signals first: a SIGTERM while Socket Mode is still connecting is a clean stop too
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
                installed.append(signum)
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = _bound_port(runner, port)
        mode = "socket mode" if settings.slack_app_token else "http"
        log.info("slack adapter ready (%s) on %s:%s", mode, host, bound)
        print(f"listening on {host}:{bound}", flush=True)
        if settings.slack_app_token:
            socket_handler = _socket_mode_handler(adapter, settings.slack_app_token)
            # the client retries apps.connections.open/connect on its own until closed, so
            # connecting runs beside the wait for `stop` instead of blocking it
            connecting = asyncio.ensure_future(socket_handler.connect_async())
        await stop.wait()
        log.info("slack adapter stopping")
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        if connecting is not None and not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
        if socket_handler is not None:
            # sends the websocket close frame, stops the receive/ping tasks, closes sessions
            with contextlib.suppress(Exception):
                await socket_handler.close_async()
        # stops accepting, lets requests in flight finish, then drains background answers
        await runner.cleanup()


def _socket_mode_handler(adapter: SlackAdapter, app_token: str) -> Any:
    """bolt's aiohttp Socket Mode handler over the adapter's app and Web API client.

    The socket-mode client calls `apps.connections.open` through its web client, so it gets
    the adapter's client explicitly: same `base_url` (`SLACK_API_URL`, e.g. a fake Slack),
    timeout and logger as every other Web API call.
    """
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    return AsyncSocketModeHandler(
        adapter.app,
        app_token,
        web_client=adapter.client,
        logger=logging.getLogger("codebot.slack.socket"),
    )


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested


async def run_slack(settings: Settings, *, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> int:
    """`codebot serve slack`: open the real service and serve; returns the exit status."""
    from bot.app import open_service

    try:
        async with open_service(settings, warm=True) as service:
            await serve_slack(settings, service, port=port, host=host)
    except SlackConfigError as error:
        log.error("slack: %s", error)
        print(f"codebot: {error}", flush=True)
        return 1
    return 0


__all__ = [
    "ADAPTER_KEY",
    "ReplyService",
    "SlackAdapter",
    "SlackConfigError",
    "build_slack_app",
    "make_web_app",
    "run_slack",
    "serve_slack",
    "unescape_slack",
]
