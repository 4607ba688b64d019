"""Discord adapter: `/code query:<text>` with autocomplete, @mentions, DMs and buttons.

A thin translation layer over `LookupService` (DESIGN.md §2, §6): an interaction or message
becomes a `Request`, the `Reply` becomes embeds + components (adapters/discord_embeds.py).

- Slash command `/code query:<text>`: the whole grammar; ephemeral unless the reply is
  public (share). Answered directly when the service is quick, otherwise deferred and
  finished with a follow-up, so an interaction is acknowledged once and within 3 seconds.
- Autocomplete on `query`: free, ≤ 25 choices, names and values cut to 100 characters.
- Mentions (`@codebot E11.9`) and DMs via MESSAGE_CREATE, answered as a reply to the
  message. No privileged message-content intent: Discord sends the content of messages
  that mention the bot, and of DMs.
- Buttons/select: stateless `DynamicItem`s whose custom_id carries the command to run, so
  they keep working after a restart and cost no per-message memory.
- `allowed_mentions` none on the client and on every send; user text is escaped.

Endpoint overrides for tests/proxies: `DISCORD_API_URL` sets `discord.http.Route.BASE`
and `DISCORD_GATEWAY_URL` sets `DiscordWebSocket.DEFAULT_GATEWAY` (both class attributes,
restored on shutdown), see `_discord_endpoints`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord_choices import choice_pairs
from adapters.discord_embeds import (
    OPEN_SELECT_ID,
    RUN_PREFIX,
    DiscordMessage,
    error_message,
    render_reply,
)
from adapters.discord_shards import ShardedClient, make_client
from adapters.ops_http import start_ops_server
from bot.commands import CommandKind, parse
from bot.config import ConfigError, Settings
from bot.model import CodeRef, Reply, Request, UserRef

log = logging.getLogger(__name__)

PLATFORM = "discord"
# Discord allows 3 s to acknowledge an interaction. Answer directly when the service is
# faster than this; otherwise acknowledge with a deferral and send the answer as a follow-up.
DEFER_AFTER_SECONDS = 2.0
SEND_FAILED_TEXT = (
    "Sorry, I couldn't deliver that answer (Discord refused the message). Please try again."
)
# Discord's error code for a second response to one interaction: another session (another
# process on the same shard, e.g. during a rolling deploy) answered it first.
ALREADY_ACKNOWLEDGED = 40060


def _answered_elsewhere(error: discord.HTTPException) -> bool:
    return error.code == ALREADY_ACKNOWLEDGED


class Service(Protocol):
    """What the adapter needs from `bot.service.LookupService`."""

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
        """The answer was posted (the delivery record; see bot/service.py)."""
        ...


# Client -> adapter, so stateless component callbacks (which only get the interaction)
# can reach the service. Weak so a closed client is not kept alive.
_ADAPTERS: weakref.WeakKeyDictionary[discord.Client, DiscordAdapter] = weakref.WeakKeyDictionary()


def _adapter_for(interaction: discord.Interaction[Any]) -> DiscordAdapter | None:
    return _ADAPTERS.get(interaction.client)


class RunButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.escape(RUN_PREFIX) + r"(?P<text>.{1,93})",
):
    """A button that runs a command text, e.g. Share: custom_id `cb:run:share E11.9`."""

    def __init__(self, text: str, label: str = "Run") -> None:
        super().__init__(
            discord.ui.Button(
                label=label, custom_id=RUN_PREFIX + text, style=discord.ButtonStyle.primary
            )
        )
        self.text = text

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> RunButton:
        """Rebuild the button from a click (works across restarts: no stored state)."""
        label = getattr(item, "label", None) or "Run"
        return cls(match["text"], label)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Run the command text for the clicking user."""
        adapter = _adapter_for(interaction)
        if adapter is not None:
            await adapter.on_component(interaction, self.text)


class OpenSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]], template=re.escape(OPEN_SELECT_ID)
):
    """The search-results select menu: choosing an option opens that code."""

    def __init__(self, select: discord.ui.Select[Any] | None = None) -> None:
        super().__init__(select or discord.ui.Select(custom_id=OPEN_SELECT_ID))

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> OpenSelect:
        """Rebuild from a selection."""
        return cls(item if isinstance(item, discord.ui.Select) else None)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Look up the chosen code."""
        adapter = _adapter_for(interaction)
        values = self.item.values
        if adapter is not None and values:
            await adapter.on_component(interaction, values[0])


def _to_view(message: DiscordMessage) -> discord.ui.View | None:
    """Components as a discord.py View made only of dynamic items (nothing stored per message)."""
    if message.select is None and not message.buttons:
        return None
    view = discord.ui.View(timeout=None)
    if message.select is not None:
        select: discord.ui.Select[Any] = discord.ui.Select(
            custom_id=message.select.custom_id,
            placeholder=message.select.placeholder,
            options=[
                discord.SelectOption(
                    label=o.label, value=o.value, description=o.description or None
                )
                for o in message.select.options
            ],
            row=0,
        )
        view.add_item(OpenSelect(select))
    first_row = 1 if message.select is not None else 0
    for index, spec in enumerate(message.buttons):
        button = RunButton(spec.custom_id[len(RUN_PREFIX) :], spec.label)
        button.row = first_row + index // 5
        view.add_item(button)
    return view


def _send_kwargs(message: DiscordMessage) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "embeds": [discord.Embed.from_dict(e) for e in message.embeds],
        "allowed_mentions": discord.AllowedMentions.none(),
    }
    if message.content:
        kwargs["content"] = message.content
    view = _to_view(message)
    if view is not None:
        kwargs["view"] = view
    return kwargs


async def _respond(interaction: discord.Interaction[Any], message: DiscordMessage) -> None:
    """Answer an interaction: its first response, or a follow-up once it was deferred."""
    kwargs = _send_kwargs(message)
    if interaction.response.is_done():
        await interaction.followup.send(ephemeral=message.ephemeral, **kwargs)
    else:
        await interaction.response.send_message(ephemeral=message.ephemeral, **kwargs)


def _strip_bot_mention(content: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", " ", content).strip()


class DiscordAdapter:
    """Owns the discord.py client, its command tree and the event handlers."""

    def __init__(
        self,
        settings: Settings,
        service: Service,
        *,
        sync: bool = False,
        guild_id: int | None = None,
        defer_after: float = DEFER_AFTER_SECONDS,
    ) -> None:
        self.settings = settings
        self.service = service
        self.defer_after = defer_after
        self._sync = sync
        self._sync_guild = guild_id
        self.client = self._make_client(settings)
        self.tree: app_commands.CommandTree[Any] = app_commands.CommandTree(self.client)
        self.tree.add_command(self._code_command())
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        # Handlers are plain attributes: discord.Client.dispatch looks up `on_<event>`.
        self.client.setup_hook = self._setup_hook  # type: ignore[method-assign]
        self.client.on_message = self.on_message  # type: ignore[attr-defined]
        self.client.on_ready = self._on_ready  # type: ignore[attr-defined]
        _ADAPTERS[self.client] = self
        self.ready = asyncio.Event()
        self._in_flight: set[asyncio.Task[Any]] = set()

    @staticmethod
    def _make_client(settings: Settings) -> discord.Client:
        # codebot never joins voice: skip discord.py's one-time "PyNaCl/davey missing" warnings
        # (one-shot flags discord.py itself clears after warning once).
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        # Only what we use: guilds (channel cache) and message events for mentions/DMs.
        # No message_content (privileged): mentions and DMs carry content anyway.
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = True
        options: dict[str, Any] = {
            "intents": intents,
            "allowed_mentions": discord.AllowedMentions.none(),
            "max_messages": None,  # we never look at old messages: no cache
        }
        return make_client(settings.discord_shard_count, settings.discord_shard_ids, **options)

    # ------------------------------------------------------------------ lifecycle

    async def _setup_hook(self) -> None:
        await _use_gateway_from_api(self.client, self.settings)
        if isinstance(self.client, ShardedClient):
            await self.client.learn_session_limits()
        self.client.add_dynamic_items(RunButton, OpenSelect)
        if self._sync:
            await _sync_tree(self.tree, self._sync_guild)

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        """Mark the current handler as in flight, so shutdown can let it finish."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def shutdown(self, grace: float = 5.0) -> None:
        """Let answers in progress reach Discord (up to `grace` s), then close the client."""
        pending = [t for t in self._in_flight if t is not asyncio.current_task()]
        if pending:
            log.info("discord: waiting for %d answer(s) in progress", len(pending))
            await asyncio.wait(pending, timeout=grace)
        await self.client.close()

    async def _on_ready(self) -> None:
        user = self.client.user
        log.info("discord: logged in as %s (%s guilds)", user, len(self.client.guilds))
        self.ready.set()

    async def _on_tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        log.error("discord: command failed", exc_info=error)
        await self._send_failure_notice(interaction)

    # ------------------------------------------------------------------ identity

    def request_from_interaction(
        self, interaction: discord.Interaction[Any], text: str, request_id: str
    ) -> Request:
        """The neutral Request for an interaction: tenant = guild (DM: dm:<user>)."""
        user = interaction.user
        if interaction.guild_id is not None:
            tenant = str(interaction.guild_id)
            # `permissions` comes from the member payload Discord sends with the interaction.
            is_admin = interaction.permissions.manage_guild
        else:
            tenant = f"dm:{user.id}"
            is_admin = False
        return self._request(
            tenant, user, text, str(interaction.channel_id or ""), is_admin, request_id
        )

    def _request(
        self,
        tenant: str,
        user: discord.abc.User,
        text: str,
        channel_id: str,
        is_admin: bool,
        request_id: str,
    ) -> Request:
        ref = UserRef(PLATFORM, tenant, str(user.id), user.display_name)
        configured = f"{PLATFORM}:{tenant}:{user.id}" in self.settings.admins
        return Request(ref, text, channel_id, is_admin or configured, request_id)

    # ------------------------------------------------------------------ slash command

    def _code_command(self) -> app_commands.Command[Any, ..., None]:
        @app_commands.command(
            name="code",
            description="Look up a medical code (E11.9), search words, or: help, quota, share",
        )
        @app_commands.describe(
            query="A code (E11.9, 0DTJ4ZZ, A0425), words (knee brace) or a command (help)"
        )
        # Usable in servers and in the bot's DMs.
        @app_commands.allowed_contexts(guilds=True, dms=True)
        async def code(interaction: discord.Interaction[Any], query: str) -> None:
            request = self.request_from_interaction(interaction, query, str(interaction.id))
            await self._answer_interaction(interaction, request)

        @code.autocomplete("query")
        async def complete(
            interaction: discord.Interaction[Any], current: str
        ) -> list[app_commands.Choice[str]]:
            return self.choices(current)

        return code

    def choices(self, current: str) -> list[app_commands.Choice[str]]:
        """Autocomplete choices for what the user typed so far (free, in-process, fast)."""
        pairs = choice_pairs(self.service.autocomplete, current)
        return [app_commands.Choice(name=name, value=value) for name, value in pairs]

    async def _answer_interaction(
        self, interaction: discord.Interaction[Any], request: Request
    ) -> None:
        """Run the service; answer within Discord's 3 s (defer if slow), exactly once."""
        with self._tracked():
            await self._answer_interaction_now(interaction, request)

    async def _answer_interaction_now(
        self, interaction: discord.Interaction[Any], request: Request
    ) -> None:
        public_hint = parse(request.text).kind is CommandKind.SHARE
        task = asyncio.create_task(self.service.handle(request))
        try:
            reply = await asyncio.wait_for(asyncio.shield(task), self.defer_after)
        except TimeoutError:
            try:
                # Slow: acknowledge now. Ephemerality is fixed by the deferral, so a share
                # (public) defers publicly.
                await interaction.response.defer(ephemeral=not public_hint, thinking=True)
            except discord.HTTPException as error:
                if _answered_elsewhere(error):
                    # another session answers it; our charge attempt (if any) was a replay
                    log.info("discord: interaction %s answered by another session", interaction.id)
                    await asyncio.gather(task, return_exceptions=True)
                    return
                log.exception("discord: could not defer interaction %s", interaction.id)
                task.cancel()
                return
            reply = await task
        if reply.replayed and request.request_id == str(interaction.id):
            # This very interaction was already handled: Discord sent it to another session
            # too (two processes on one shard). That process answers it; nothing to do here.
            log.info("discord: interaction %s handled by another session", interaction.id)
            return
        message = render_reply(reply, ephemeral=True)
        delivered = await self._deliver(interaction, message)
        if delivered:
            await self.service.delivered(request)
        elif delivered is False and not reply.replayed:
            # no answer reached the user: no charge (a replay charged nothing here, and
            # refunding it would undo the original's real charge)
            await self.service.refund(request)

    async def on_component(self, interaction: discord.Interaction[Any], text: str) -> None:
        """A button click or select choice: run `text` as a command for the clicking user."""
        data: dict[str, Any] = dict(interaction.data or {})
        message_id = interaction.message.id if interaction.message else interaction.id
        # One charge per (message, user, component, choice): a double click is a replay.
        request_id = f"c:{message_id}:{interaction.user.id}:{data.get('custom_id', '')}:{text}"
        request = self.request_from_interaction(interaction, text, request_id[:200])
        await self._answer_interaction(interaction, request)

    async def _deliver(
        self, interaction: discord.Interaction[Any], message: DiscordMessage
    ) -> bool | None:
        """Send the answer: True; False (after telling the user) when Discord refused it;
        None when another session had already answered this interaction (nothing to undo).
        """
        try:
            await _respond(interaction, message)
        except discord.HTTPException as error:
            if _answered_elsewhere(error):
                log.info("discord: interaction %s answered by another session", interaction.id)
                return None
            log.error("discord: sending the answer failed (%s %s)", error.status, error.code)
            await self._send_failure_notice(interaction)
            return False
        return True

    async def _send_failure_notice(self, interaction: discord.Interaction[Any]) -> None:
        """Tell the user the answer could not be delivered; never raises."""
        try:
            await _respond(interaction, error_message(SEND_FAILED_TEXT))
        except discord.HTTPException:
            log.exception("discord: could not tell the user about a failed answer")

    # ------------------------------------------------------------------ mentions and DMs

    async def on_message(self, message: discord.Message) -> None:
        """Answer `@codebot E11.9` in a channel, and any DM, as a reply to the message."""
        with self._tracked():
            await self._answer_message(message)

    async def _answer_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or message.author.bot or message.author.id == me.id:
            return  # never answer bots, including ourselves (no loops)
        is_dm = message.guild is None
        if not is_dm and not any(user.id == me.id for user in message.mentions):
            return
        text = _strip_bot_mention(message.content, me.id)
        if message.guild is not None:
            tenant = str(message.guild.id)
            member = message.author
            is_admin = isinstance(member, discord.Member) and member.guild_permissions.manage_guild
        else:
            tenant, is_admin = f"dm:{message.author.id}", False
        request = self._request(
            tenant, message.author, text, str(message.channel.id), is_admin, f"msg:{message.id}"
        )
        reply = await self.service.handle(request)
        if reply.replayed:
            # The same message reached another session too (two processes on one shard):
            # the process that handled it first replies; a second reply would double it.
            log.info("discord: message %s handled by another session", message.id)
            return
        # A channel message cannot be ephemeral: the answer is a visible reply.
        rendered = render_reply(reply, ephemeral=False)
        try:
            await message.reply(mention_author=False, **_send_kwargs(rendered))
            await self.service.delivered(request)
        except discord.HTTPException as error:
            log.error("discord: reply failed (%s %s)", error.status, error.code)
            await self.service.refund(request)
            with contextlib.suppress(discord.HTTPException):
                await message.reply(
                    mention_author=False, **_send_kwargs(error_message(SEND_FAILED_TEXT))
                )


# ---------------------------------------------------------------------- endpoints


@contextlib.contextmanager
def _discord_endpoints(settings: Settings) -> Iterator[None]:
    """Point discord.py at DISCORD_API_URL / DISCORD_GATEWAY_URL; restore on exit.

    discord.py has no per-client option for either: REST URLs are built from the class
    attribute `Route.BASE` (also used by interaction webhooks), and a non-sharded client
    connects to `DiscordWebSocket.DEFAULT_GATEWAY` (2.7 does not ask /gateway/bot; it also
    falls back to it after an invalidated session). Setting these two class attributes is
    therefore the one place that covers every path; they are restored afterwards.
    """
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    if settings.discord_api_url:
        Route.BASE = settings.discord_api_url.rstrip("/")
    if settings.discord_gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


async def _use_gateway_from_api(client: discord.Client, settings: Settings) -> None:
    """With only DISCORD_API_URL set (a proxy), ask its /gateway/bot where the gateway is."""
    if settings.discord_api_url and not settings.discord_gateway_url:
        _, url, _ = await client.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


async def _sync_tree(tree: app_commands.CommandTree[Any], guild_id: int | None) -> list[str]:
    guild = discord.Object(id=guild_id) if guild_id is not None else None
    if guild is not None:
        # Guild commands update instantly: handy for testing a new version in one server.
        tree.copy_global_to(guild=guild)
    synced = await tree.sync(guild=guild)
    log.info(
        "discord: synced %d command(s) %s",
        len(synced),
        f"to guild {guild_id}" if guild_id else "globally",
    )
    return [command.name for command in synced]


def _require_token(settings: Settings) -> str:
    if not settings.discord_token:
        raise ConfigError("DISCORD_TOKEN is not set")
    return settings.discord_token


# ---------------------------------------------------------------------- entry points


@contextlib.asynccontextmanager
async def running_bot(
    settings: Settings,
    service: Service,
    *,
    sync: bool = False,
    guild_id: int | None = None,
    defer_after: float = DEFER_AFTER_SECONDS,
) -> AsyncIterator[DiscordAdapter]:
    """Start the bot in the background (tests, embedding); stops and restores on exit."""
    token = _require_token(settings)
    with _discord_endpoints(settings):
        adapter = DiscordAdapter(
            settings, service, sync=sync, guild_id=guild_id, defer_after=defer_after
        )
        task = asyncio.create_task(adapter.client.start(token))
        try:
            yield adapter
        finally:
            await adapter.shutdown()
            with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
                await asyncio.wait_for(task, 10)


async def serve_discord(
    settings: Settings, service: Service, *, sync: bool = False, guild_id: int | None = None
) -> None:
    """Run the Discord bot until SIGTERM/SIGINT, then close the gateway and HTTP cleanly.

    `sync` registers the slash command first (globally, or to `guild_id`); otherwise the
    commands already registered with Discord are used: no re-sync on every start.
    """
    token = _require_token(settings)
    with _discord_endpoints(settings):
        adapter = DiscordAdapter(settings, service, sync=sync, guild_id=guild_id)
        client = adapter.client
        stop = _install_stop_signals(adapter.shutdown)
        try:
            await client.start(token)
        except discord.LoginFailure:
            raise ConfigError("DISCORD_TOKEN was rejected by Discord") from None
        finally:
            stop()
            if not client.is_closed():
                await client.close()


def _install_stop_signals(close: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """SIGTERM/SIGINT close the client (finishing in-flight sends); returns an uninstaller."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    tasks: set[asyncio.Task[None]] = set()

    def on_signal(signum: signal.Signals) -> None:
        log.info("discord: %s received, shutting down", signum.name)
        task = asyncio.ensure_future(close())
        tasks.add(task)  # keep a reference until done
        task.add_done_callback(tasks.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):
            pass  # not the main thread / platform without signals: rely on cancellation

    def uninstall() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return uninstall


async def sync_commands(settings: Settings, guild_id: int | None = None) -> list[str]:
    """Register the slash command with Discord (REST only, no gateway); returns the names."""
    token = _require_token(settings)

    class _NoService:
        async def handle(self, request: Request) -> Reply:
            raise RuntimeError("not serving")

        def autocomplete(self, prefix: str, limit: int = 25) -> list[CodeRef]:
            return []

        async def refund(self, request: Request) -> None:
            return None

        async def delivered(self, request: Request) -> None:
            return None

    with _discord_endpoints(settings):
        adapter = DiscordAdapter(settings, _NoService())
        client = adapter.client
        try:
            # login() runs setup_hook, which would add items; we only need REST here.
            await client.login(token)
            return await _sync_tree(adapter.tree, guild_id)
        except discord.LoginFailure:
            raise ConfigError("DISCORD_TOKEN was rejected by Discord") from None
        finally:
            await client.close()


async def run_discord(
    settings: Settings, *, sync: bool = False, guild_id: int | None = None
) -> int:
    """`codebot serve discord [--sync]`: open the real service and serve until SIGTERM.

    Returns the process exit status (0 after a clean shutdown).
    """
    from bot.app import open_service  # the assembly lives in bot/; imported lazily

    try:
        async with open_service(settings, warm=True) as service:
            ops = (
                await start_ops_server(service, settings.health_port)
                if settings.health_port
                else None
            )
            try:
                await serve_discord(settings, service, sync=sync, guild_id=guild_id)
            finally:
                if ops is not None:
                    await ops.cleanup()
    except ConfigError as error:
        log.error("discord: %s", error)
        return 1
    return 0
