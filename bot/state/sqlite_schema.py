"""The SQLite schema: numbered migrations (see `bot.state.migrations` for the rules).

Kept in step with `bot/state/postgres_schema.py`: same numbers, same names.
"""

from __future__ import annotations

from bot.state.migrations import Migration

INITIAL = """
    -- Plans chosen by admins (NULL plan = the configured guest/registered default).
    CREATE TABLE users (
        platform      TEXT NOT NULL,
        tenant        TEXT NOT NULL,
        user_id       TEXT NOT NULL,
        plan          TEXT,
        display_name  TEXT NOT NULL DEFAULT '',
        registered_at TEXT,
        created_at    TEXT NOT NULL,
        PRIMARY KEY (platform, tenant, user_id)
    ) WITHOUT ROWID;

    CREATE TABLE teams (
        platform   TEXT NOT NULL,
        tenant     TEXT NOT NULL,
        plan       TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (platform, tenant)
    ) WITHOUT ROWID;

    -- One usage bucket per pool and period. user_id '' is the tenant's team pool.
    -- `used` is maintained by the triggers below from `charges`, never written directly;
    -- `granted` is what admins added on top of the plan for this period.
    CREATE TABLE usage (
        platform TEXT NOT NULL,
        tenant   TEXT NOT NULL,
        user_id  TEXT NOT NULL,
        period   TEXT NOT NULL,
        used     INTEGER NOT NULL DEFAULT 0,
        granted  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (platform, tenant, user_id, period)
    ) WITHOUT ROWID;

    -- The ledger: one row per request id, allowed or refused, so a replay returns the
    -- original outcome. pool_user is who paid ('' = the team pool) for `period`.
    CREATE TABLE charges (
        platform   TEXT NOT NULL,
        request_id TEXT NOT NULL,
        tenant     TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        pool_user  TEXT NOT NULL,
        period     TEXT NOT NULL,
        plan       TEXT NOT NULL,
        team_plan  TEXT,
        cost       INTEGER NOT NULL,
        allowed    INTEGER NOT NULL,
        remaining  INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (platform, request_id)
    ) WITHOUT ROWID;
    -- for usage/stats of this period; no index by user: only purge needs that (a scan)
    CREATE INDEX charges_tenant_time ON charges (platform, tenant, created_at);

    CREATE TRIGGER charges_count AFTER INSERT ON charges WHEN NEW.allowed = 1 BEGIN
        INSERT INTO usage (platform, tenant, user_id, period, used)
        VALUES (NEW.platform, NEW.tenant, NEW.pool_user, NEW.period, NEW.cost)
        ON CONFLICT (platform, tenant, user_id, period) DO UPDATE SET used = used + excluded.used;
    END;

    -- A refund deletes the charge; the counter follows in the same statement.
    CREATE TRIGGER charges_refund AFTER DELETE ON charges WHEN OLD.allowed = 1 BEGIN
        UPDATE usage SET used = used - OLD.cost
        WHERE platform = OLD.platform AND tenant = OLD.tenant
          AND user_id = OLD.pool_user AND period = OLD.period;
    END;

    -- Audit trail of admin grants.
    CREATE TABLE grants (
        id         INTEGER PRIMARY KEY,
        platform   TEXT NOT NULL,
        tenant     TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        period     TEXT NOT NULL,
        amount     INTEGER NOT NULL CHECK (amount > 0),
        granted_by TEXT NOT NULL,
        created_at TEXT NOT NULL
    );

    -- Answered lookups, for /code recent and /code stats (per tenant).
    CREATE TABLE lookups (
        id           INTEGER PRIMARY KEY,
        platform     TEXT NOT NULL,
        tenant       TEXT NOT NULL,
        user_id      TEXT NOT NULL,
        display_name TEXT NOT NULL,
        system       TEXT NOT NULL,
        code         TEXT NOT NULL,
        title        TEXT NOT NULL,
        request_id   TEXT NOT NULL,
        created_at   TEXT NOT NULL
    );
    CREATE INDEX lookups_tenant ON lookups (platform, tenant, created_at);

    -- Team notes. system '' = stored without a resolver: matches the code key in any set.
    CREATE TABLE notes (
        platform    TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        system      TEXT NOT NULL,
        code_key    TEXT NOT NULL,
        code        TEXT NOT NULL,
        text        TEXT NOT NULL,
        author_id   TEXT NOT NULL,
        author_name TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (platform, tenant, code_key, system)
    ) WITHOUT ROWID;
    """

PROCESSED_REQUESTS = """
    -- Processed-once request ids (Slack event/trigger ids, Discord interaction ids): the
    -- first process to insert a row handles the request; every other sees the row and
    -- neither applies nor answers it again. answered_at is the delivery record.
    CREATE TABLE processed_requests (
        platform    TEXT NOT NULL,
        request_id  TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        user_id     TEXT NOT NULL,
        claimed_at  TEXT NOT NULL,
        answered_at TEXT,
        PRIMARY KEY (platform, request_id)
    ) WITHOUT ROWID;
    CREATE INDEX processed_requests_open ON processed_requests (claimed_at)
        WHERE answered_at IS NULL;
    """

# Slack OAuth installations and one-use states (bot/state/installations.py).
APP_INSTALLATIONS = """
    -- Installations of a chat app by workspaces (Slack OAuth): '' = no enterprise / team.
    CREATE TABLE app_installations (
        platform      TEXT NOT NULL,
        enterprise_id TEXT NOT NULL,
        team_id       TEXT NOT NULL,
        installation  TEXT NOT NULL,
        installed_at  REAL NOT NULL,
        PRIMARY KEY (platform, enterprise_id, team_id)
    ) WITHOUT ROWID;
    -- One-use OAuth states (epoch seconds of expiry).
    CREATE TABLE oauth_states (
        state      TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
    """

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", INITIAL),
    Migration(2, "processed_requests", PROCESSED_REQUESTS),
    Migration(3, "app_installations", APP_INSTALLATIONS),
)
