"""Settings: read once at start-up from the environment and an optional `codebot.toml`.

Nothing else in codebot reads the environment; components receive a `Settings` (or the
part of it they need). Environment variables win over the TOML file.

`codebot.toml` (all keys optional):

    codes_db = "data/build/codes.sqlite"
    database_url = "sqlite:///var/state.sqlite"
    admins = ["slack:T1:U123", "discord:G1:42"]   # extra admins: platform:tenant:user

    [quota]            # see bot/plans.py for the plan table
    ...
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CODES_DB = PROJECT_ROOT / "data" / "build" / "codes.sqlite"
DEFAULT_STATE_DIR = PROJECT_ROOT / "var"


class ConfigError(ValueError):
    """A setting is malformed; the message names the setting, never its value."""


@dataclass(frozen=True)
class Settings:
    """Every setting codebot has. Secrets are excluded from `repr`."""

    codes_db: Path = DEFAULT_CODES_DB
    database_url: str = f"sqlite:///{DEFAULT_STATE_DIR / 'state.sqlite'}"
    admins: tuple[str, ...] = ()
    quota: Mapping[str, Any] = field(default_factory=dict)
    slack_bot_token: str = field(default="", repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_api_url: str = ""
    # Slack OAuth (any number of workspaces) instead of one SLACK_BOT_TOKEN: see
    # adapters/slack_oauth.py. The redirect URI is the public URL of /slack/oauth_redirect.
    slack_client_id: str = ""
    slack_client_secret: str = field(default="", repr=False)
    slack_redirect_uri: str = ""
    discord_token: str = field(default="", repr=False)
    discord_api_url: str = ""
    discord_gateway_url: str = ""
    discord_shard_count: int | None = None
    discord_shard_ids: tuple[int, ...] = ()  # empty: every shard of discord_shard_count
    # HTTP interactions endpoint (adapters/discord_http.py): the application's public key
    discord_public_key: str = ""
    log_level: str = ""  # empty: the CLI picks (INFO for servers, WARNING for chat)
    # Pins "today" (ISO date) for demos and tests; empty: the UTC date (bot/clock.py).
    today: str = ""
    log_format: str = "text"  # "json": one JSON object per log line (CODEBOT_LOG_FORMAT)
    # PostgreSQL state backend (bot/state/postgres.py): pool size per process, and session
    # settings sent at connect ([database_server_settings] in codebot.toml)
    database_pool_size: int = 10
    database_server_settings: Mapping[str, str] = field(default_factory=dict)
    # Discord process: a small HTTP port for /healthz, /readyz, /metrics (0 = none)
    health_port: int = 0

    @property
    def slack_oauth(self) -> bool:
        """Slack OAuth mode: a client id and secret (installations in the state database)."""
        return bool(self.slack_client_id or self.slack_client_secret)

    @property
    def slack_enabled(self) -> bool:
        """Slack runs with a bot token or OAuth credentials, and a signing secret or app token."""
        credentials = self.slack_bot_token or self.slack_oauth
        return bool(credentials and (self.slack_signing_secret or self.slack_app_token))

    @property
    def discord_enabled(self) -> bool:
        """Discord runs when its token is set."""
        return bool(self.discord_token)

    @property
    def state_path(self) -> Path:
        """Filesystem path of the SQLite state database from `database_url`."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            raise ConfigError("CODEBOT_DATABASE_URL must look like sqlite:///path/to/state.sqlite")
        return Path(self.database_url[len(prefix) :])

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, toml_path: Path | None = None) -> Settings:
        """Read `codebot.toml` (CODEBOT_CONFIG or ./codebot.toml) and then the environment."""
        env = dict(os.environ) if env is None else env
        if toml_path is None:
            configured = env.get("CODEBOT_CONFIG")
            toml_path = Path(configured) if configured else Path("codebot.toml")
        file_values: dict[str, Any] = {}
        if toml_path.is_file():
            try:
                file_values = tomllib.loads(toml_path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
                raise ConfigError(f"{toml_path} is not valid TOML: {error}") from None
        return cls.from_env(env, file_values)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], file_values: Mapping[str, Any] | None = None
    ) -> Settings:
        """Build settings from a TOML mapping overridden by environment variables."""
        values = dict(file_values or {})
        _reject_unknown_keys(values)

        def pick(name: str, key: str, default: str = "") -> str:
            return str(env.get(name) or values.get(key) or default)

        shards = pick("DISCORD_SHARD_COUNT", "discord_shard_count")
        if shards and not (shards.isdigit() and int(shards) > 0):
            raise ConfigError("DISCORD_SHARD_COUNT must be a whole number of at least 1")
        shard_count = int(shards) if shards else None
        shard_ids = parse_shard_ids(pick("DISCORD_SHARD_IDS", "discord_shard_ids"), shard_count)
        admins = values.get("admins", [])
        if not isinstance(admins, list) or not all(isinstance(a, str) for a in admins):
            raise ConfigError("admins in codebot.toml must be a list of strings")
        env_admins = [a for a in env.get("CODEBOT_ADMINS", "").split(",") if a.strip()]
        quota = values.get("quota", {})
        today = pick("CODEBOT_TODAY", "today")
        if today:
            try:
                date.fromisoformat(today)
            except ValueError:
                raise ConfigError("CODEBOT_TODAY must be a date like 2026-12-01") from None
        if not isinstance(quota, dict):
            raise ConfigError("[quota] in codebot.toml must be a table")
        server_settings = values.get("database_server_settings", {})
        if not isinstance(server_settings, dict):
            raise ConfigError("[database_server_settings] in codebot.toml must be a table")
        log_format = pick("CODEBOT_LOG_FORMAT", "log_format", "text").lower()
        if log_format not in ("text", "json"):
            raise ConfigError('CODEBOT_LOG_FORMAT must be "text" or "json"')
        return cls(
            codes_db=Path(pick("CODEBOT_CODES_DB", "codes_db", str(DEFAULT_CODES_DB))),
            log_format=log_format,
            database_pool_size=_whole(
                pick("CODEBOT_DATABASE_POOL_SIZE", "database_pool_size", "10"),
                "CODEBOT_DATABASE_POOL_SIZE",
                minimum=1,
            ),
            database_server_settings={str(k): str(v) for k, v in server_settings.items()},
            health_port=_whole(
                pick("CODEBOT_HEALTH_PORT", "health_port", "0"), "CODEBOT_HEALTH_PORT", minimum=0
            ),
            database_url=pick("CODEBOT_DATABASE_URL", "database_url", cls.database_url),
            admins=tuple(a.strip() for a in [*admins, *env_admins]),
            quota=quota,
            slack_bot_token=pick("SLACK_BOT_TOKEN", "slack_bot_token"),
            slack_signing_secret=pick("SLACK_SIGNING_SECRET", "slack_signing_secret"),
            slack_app_token=pick("SLACK_APP_TOKEN", "slack_app_token"),
            slack_api_url=pick("SLACK_API_URL", "slack_api_url"),
            slack_client_id=pick("SLACK_CLIENT_ID", "slack_client_id"),
            slack_client_secret=pick("SLACK_CLIENT_SECRET", "slack_client_secret"),
            slack_redirect_uri=pick("SLACK_REDIRECT_URI", "slack_redirect_uri"),
            discord_token=pick("DISCORD_TOKEN", "discord_token"),
            discord_api_url=pick("DISCORD_API_URL", "discord_api_url"),
            discord_gateway_url=pick("DISCORD_GATEWAY_URL", "discord_gateway_url"),
            discord_shard_count=shard_count,
            discord_shard_ids=shard_ids,
            discord_public_key=_public_key(pick("DISCORD_PUBLIC_KEY", "discord_public_key")),
            log_level=pick("CODEBOT_LOG_LEVEL", "log_level").upper(),
            today=today,
        )


def _reject_unknown_keys(values: Mapping[str, Any]) -> None:
    """A misspelt key (`databse_url`) must fail loudly, not silently keep the default."""
    known = {item.name for item in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
        raise ConfigError(f"unknown key(s) in codebot.toml: {', '.join(hints)}")


def _whole(text: str, name: str, *, minimum: int) -> int:
    if not text.strip().isdigit() or int(text) < minimum:
        raise ConfigError(f"{name} must be a whole number of at least {minimum}")
    return int(text)


def parse_shard_ids(text: str, shard_count: int | None) -> tuple[int, ...]:
    """`DISCORD_SHARD_IDS` ("0-3", "4,5,6,7", "0-1,6-7") as sorted shard ids.

    Each process of a bot split across machines runs only these shards of
    `DISCORD_SHARD_COUNT`, so the count is required and every id must be below it.
    """
    text = text.strip()
    if not text:
        return ()
    if shard_count is None:
        raise ConfigError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (all machines together)")
    ids: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
            raise ConfigError('DISCORD_SHARD_IDS must look like "0-3" or "0,1,2,3"')
        first, last = int(low), int(high) if dash else int(low)
        if first > last:
            raise ConfigError(f"DISCORD_SHARD_IDS range {first}-{last} is backwards")
        if last >= shard_count:
            raise ConfigError(
                f"DISCORD_SHARD_IDS names shard {last}, but DISCORD_SHARD_COUNT is {shard_count} "
                f"(ids run 0-{shard_count - 1})"
            )
        span = set(range(first, last + 1))
        if ids & span:
            raise ConfigError(f"DISCORD_SHARD_IDS names shard {min(ids & span)} twice")
        ids |= span
    return tuple(sorted(ids))


def _public_key(text: str) -> str:
    """DISCORD_PUBLIC_KEY: the application's Ed25519 public key, 64 hex digits (or empty)."""
    text = text.strip().lower()
    if text and (len(text) != 64 or any(c not in "0123456789abcdef" for c in text)):
        raise ConfigError(
            "DISCORD_PUBLIC_KEY must be 64 hex digits (Developer Portal, General Information)"
        )
    return text
