"""Slack OAuth: codebot installed by any number of workspaces (bolt's `AsyncOAuthSettings`).

Two modes, chosen once at start-up by `slack_mode`:
- **token**: `SLACK_BOT_TOKEN`, one workspace (the app's own "Install to Workspace").
- **oauth**: `SLACK_CLIENT_ID` + `SLACK_CLIENT_SECRET`, no bot token. `GET /slack/install`
  is the "Add to Slack" page, `GET /slack/oauth_redirect` Slack's callback, which exchanges
  the one-use code (`oauth.v2.access`) for the workspace's bot token and stores it. Every
  request is then authorized with its own workspace's token.
Anything else (both, half of the client pair, neither) is refused with a message naming the
settings. The trap this guards against: given a client id and secret in the environment,
slack-bolt builds OAuth settings on its own, drops the bot token, and answers every
request with an empty 200; `check_bolt_mode` refuses to start if bolt did that anyway.

Storage: installations and OAuth states live in the state database (`bot.installations`)
(`bot/state/installations.py`, SQLite and PostgreSQL) through the
`AsyncInstallationStore` / `AsyncOAuthStateStore` below, rather than bolt's
async SQLAlchemy stores: the project's store already speaks to both backends with
hand-written SQL, SQLAlchemy would be a second database layer (and dependency) to
configure, pool and migrate beside it, and two small tables need none of it. bolt's default
file stores under `$HOME` are never used: behind a load balancer the callback lands on
another replica and fails with "invalid state".

Authorization: bolt's `AsyncInstallationStoreAuthorize` over our store, bot tokens only,
with its result cache on: one `auth.test` per workspace token per process (not per
request). The installation row is still read on every request, so an uninstall seen by
one replica takes effect on all of them at once. `app_uninstalled` and `tokens_revoked`
delete the installation (bolt's revocation listeners over our store); the workspace's
usage data stays until an admin purges it (`codebot admin purge`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from enum import Enum
from typing import Any

from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.state.installations import InstallationKey, Installations

log = logging.getLogger("codebot.slack.oauth")

PLATFORM = "slack"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600  # an installer has 10 minutes between "Add to Slack" and approving
# The bot scopes of slack-app-manifest.yml (a test keeps the two equal).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "app_mentions:read",
    "im:history",
    "im:read",
    "im:write",
    "users:read",
)


class SlackConfigError(ValueError):
    """Slack settings are incomplete; the message names the setting, never its value."""


class SlackMode(Enum):
    """How the app gets its tokens."""

    TOKEN = "token"  # SLACK_BOT_TOKEN: one workspace
    OAUTH = "oauth"  # SLACK_CLIENT_ID + SLACK_CLIENT_SECRET: any number of workspaces


def slack_mode(settings: Settings) -> SlackMode:
    """The one mode `settings` describe, or SlackConfigError for an ambiguous combination."""
    has_id, has_secret = bool(settings.slack_client_id), bool(settings.slack_client_secret)
    if has_id != has_secret:
        missing = "SLACK_CLIENT_SECRET" if has_id else "SLACK_CLIENT_ID"
        raise SlackConfigError(
            f"OAuth needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET: {missing} is not set"
        )
    if has_id and settings.slack_bot_token:
        raise SlackConfigError(
            "SLACK_BOT_TOKEN and SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are both set: choose one "
            "workspace (SLACK_BOT_TOKEN) or OAuth for many (the client id and secret)"
        )
    if not (has_id or settings.slack_bot_token):
        raise SlackConfigError(
            "SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID + SLACK_CLIENT_SECRET "
            "(OAuth) is not set"
        )
    if not (settings.slack_signing_secret or settings.slack_app_token):
        # Without a secret anyone could forge requests: refuse to start in HTTP mode.
        raise SlackConfigError("SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN) is not set")
    return SlackMode.OAUTH if has_id else SlackMode.TOKEN


def check_bolt_mode(mode: SlackMode, oauth_flow: Any) -> None:
    """Refuse to run when bolt's own idea of the mode differs from ours (the env trap)."""
    if mode is SlackMode.TOKEN and oauth_flow is not None:
        raise SlackConfigError(
            "slack-bolt switched to OAuth because SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are "
            "in the environment (perhaps empty) and would drop SLACK_BOT_TOKEN: unset them, "
            "or unset SLACK_BOT_TOKEN to use OAuth"
        )


# ---------------------------------------------------------------- keys and serialisation


def installation_key(
    enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
) -> InstallationKey:
    """An org-wide install is found by its enterprise alone; a workspace by both ids."""
    team = "" if is_enterprise_install else (team_id or "")
    return InstallationKey(PLATFORM, enterprise_id or "", team)


def bot_to_json(bot: Bot, installer_user_id: str = "") -> dict[str, Any]:
    """What is stored: the bot half of an installation (codebot asks for no user scopes)."""
    return {
        "app_id": bot.app_id,
        "enterprise_id": bot.enterprise_id,
        "enterprise_name": bot.enterprise_name,
        "team_id": bot.team_id,
        "team_name": bot.team_name,
        "bot_token": bot.bot_token,
        "bot_id": bot.bot_id,
        "bot_user_id": bot.bot_user_id,
        "bot_scopes": list(bot.bot_scopes or []),
        "bot_refresh_token": bot.bot_refresh_token,
        "bot_token_expires_at": bot.bot_token_expires_at,
        "is_enterprise_install": bool(bot.is_enterprise_install),
        "installed_at": float(bot.installed_at),
        "installer_user_id": installer_user_id,
    }


def bot_from_json(data: Mapping[str, Any]) -> Bot:
    """The stored bot back as slack_sdk's model."""
    fields = {k: v for k, v in data.items() if k != "installer_user_id"}
    return Bot(**fields)


def installation_from_json(data: Mapping[str, Any]) -> Installation:
    """The stored bot as an `Installation` (installer as its user, no user token)."""
    fields = {k: v for k, v in data.items() if k != "installer_user_id"}
    return Installation(user_id=str(data.get("installer_user_id") or ""), **fields)


# ---------------------------------------------------------------- bolt's store interfaces


class StateDbInstallationStore(AsyncInstallationStore):
    """bolt's installation store over `bot.installations` (both state backends)."""

    def __init__(self, records: Installations) -> None:
        self.records = records

    @property
    def logger(self) -> logging.Logger:
        """The logger bolt uses for this store."""
        return log

    async def async_save(self, installation: Installation) -> None:
        """Store the installation's bot (a reinstall replaces the token)."""
        await self._save(installation.to_bot(), installation.user_id or "")

    async def async_save_bot(self, bot: Bot) -> None:
        """Store a bot (token rotation saves refreshed bots here)."""
        stored = await self._find(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        installer = str((stored or {}).get("installer_user_id") or "")
        await self._save(bot, installer)

    async def _save(self, bot: Bot, installer: str) -> None:
        key = installation_key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        await self.records.save_installation(key, bot_to_json(bot, installer), bot.installed_at)
        log.info("slack: installed in %s", _describe(key))

    async def _find(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> dict[str, Any] | None:
        key = installation_key(enterprise_id, team_id, is_enterprise_install)
        return await self.records.find_installation(key)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        """The workspace's (or org's) bot, or None when not installed."""
        found = await self._find(enterprise_id, team_id, is_enterprise_install)
        return bot_from_json(found) if found else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The installation; None for a user's own installation (no user tokens are kept)."""
        found = await self._find(enterprise_id, team_id, is_enterprise_install)
        if found is None:
            return None
        if user_id is not None and user_id != found.get("installer_user_id"):
            return None
        return installation_from_json(found)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Forget the bot token (`tokens_revoked` for the bot, `app_uninstalled`)."""
        await self._delete(enterprise_id, team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        """Forget the installation; a user's revoked token is nothing to us (none kept)."""
        if user_id is None:
            await self._delete(enterprise_id, team_id)

    async def _delete(self, enterprise_id: str | None, team_id: str | None) -> None:
        # Events of an org-wide install carry the org and maybe a team: try both keys.
        keys = {installation_key(enterprise_id, team_id, False)}
        if enterprise_id:
            keys.add(installation_key(enterprise_id, team_id, True))
        for key in keys:
            if await self.records.delete_installation(key):
                log.info("slack: uninstalled from %s (usage data kept)", _describe(key))


class StateDbOAuthStateStore(AsyncOAuthStateStore):
    """One-use OAuth `state` values in the state database (any replica can check them)."""

    def __init__(self, records: Installations, expiration_seconds: int = STATE_SECONDS) -> None:
        self.records = records
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        """The logger bolt uses for this store."""
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        """A fresh unguessable state, valid for `expiration_seconds`."""
        state = secrets.token_urlsafe(32)
        now = time.time()
        await self.records.issue_state(state, now + self.expiration_seconds, now)
        return state

    async def async_consume(self, state: str) -> bool:
        """True once for a live state: a replayed or expired callback is refused."""
        consumed = await self.records.consume_state(state, time.time())
        if not consumed:
            log.warning("slack: OAuth callback with an unknown, used or expired state")
        return consumed


# ---------------------------------------------------------------- assembly


def oauth_app_options(
    settings: Settings, records: Installations, client: AsyncWebClient
) -> dict[str, Any]:
    """The `AsyncApp` keyword arguments of OAuth mode: settings, stores, cached authorize."""
    store = StateDbInstallationStore(records)
    oauth_settings = AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=settings.slack_redirect_uri or None,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=store,
        installation_store_bot_only=True,
        state_store=StateDbOAuthStateStore(records),
        state_expiration_seconds=STATE_SECONDS,
        logger=log,
    )
    authorize = AsyncInstallationStoreAuthorize(
        logger=log,
        installation_store=store,
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        bot_only=True,
        cache_enabled=True,  # one auth.test per workspace token, not per request
        client=client,
    )
    return {
        "oauth_settings": oauth_settings,
        "installation_store": store,
        "installation_store_bot_only": True,
        "authorize": authorize,
    }


def _describe(key: InstallationKey) -> str:
    if key.team_id and key.enterprise_id:
        return f"workspace {key.team_id} of org {key.enterprise_id}"
    return f"workspace {key.team_id}" if key.team_id else f"org {key.enterprise_id} (org-wide)"
