"""The PostgreSQL schema: numbered migrations (see `bot.state.migrations` for the rules).

Kept in step with `bot/state/sqlite_schema.py`: same numbers, same names, same tables and
columns (timestamps are the same sortable UTC text, so the policy code is shared).

Exact charging lives in the database as one function, `codebot_charge`: it takes a
transaction-level advisory lock on the tenant (every pool a charge may read — the team
pool and the member's own — belongs to one tenant), re-checks for a replay under the
lock, reads the limits of the replica's plan set and both pools' usage, and inserts the
ledger row; the `charges_count` trigger adds the cost to the chosen counter. Charges of
one tenant therefore run one at a time across every replica, and a charge never reads
usage another charge has not committed yet, so the budget is never overspent. Under READ
COMMITTED each statement of a volatile function sees what committed before it began, so
the statements after the lock see every earlier charge of that tenant.

Plans across replicas: each replica stores its `[quota]` plans once in `plan_limits`
under the hash of their canonical JSON and passes that hash to `codebot_charge`, so
replicas running different configs during a rolling deploy each charge against their own
limits, without per-connection temp tables.
"""

from __future__ import annotations

from bot.state.migrations import Migration

INITIAL = """
CREATE TABLE users (
    platform      TEXT NOT NULL,
    tenant        TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    plan          TEXT,
    display_name  TEXT NOT NULL DEFAULT '',
    registered_at TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (platform, tenant, user_id)
);

CREATE TABLE teams (
    platform   TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    plan       TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, tenant)
);

CREATE TABLE usage (
    platform TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    period   TEXT NOT NULL,
    used     BIGINT NOT NULL DEFAULT 0,
    granted  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (platform, tenant, user_id, period)
);

CREATE TABLE charges (
    platform   TEXT NOT NULL,
    request_id TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    pool_user  TEXT NOT NULL,
    period     TEXT NOT NULL,
    plan       TEXT NOT NULL,
    team_plan  TEXT,
    cost       BIGINT NOT NULL,
    allowed    INTEGER NOT NULL,
    remaining  BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (platform, request_id)
);
CREATE INDEX charges_tenant_time ON charges (platform, tenant, created_at);

CREATE FUNCTION charges_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage (platform, tenant, user_id, period, used)
    VALUES (NEW.platform, NEW.tenant, NEW.pool_user, NEW.period, NEW.cost)
    ON CONFLICT (platform, tenant, user_id, period)
    DO UPDATE SET used = usage.used + excluded.used;
    RETURN NULL;
END $$;
CREATE TRIGGER charges_count AFTER INSERT ON charges
    FOR EACH ROW WHEN (NEW.allowed = 1) EXECUTE FUNCTION charges_count();

CREATE FUNCTION charges_refund() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE usage SET used = used - OLD.cost
    WHERE platform = OLD.platform AND tenant = OLD.tenant
      AND user_id = OLD.pool_user AND period = OLD.period;
    RETURN NULL;
END $$;
CREATE TRIGGER charges_refund AFTER DELETE ON charges
    FOR EACH ROW WHEN (OLD.allowed = 1) EXECUTE FUNCTION charges_refund();

CREATE TABLE grants (
    id         BIGSERIAL PRIMARY KEY,
    platform   TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    period     TEXT NOT NULL,
    amount     BIGINT NOT NULL CHECK (amount > 0),
    granted_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE lookups (
    id           BIGSERIAL PRIMARY KEY,
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
);

-- Plan limits of every config that has run, keyed by the hash of the plan table.
CREATE TABLE plan_limits (
    config_hash TEXT NOT NULL,
    name        TEXT NOT NULL,
    lim         BIGINT NOT NULL,
    monthly     BOOLEAN NOT NULL,
    PRIMARY KEY (config_hash, name)
);

CREATE FUNCTION codebot_charge(
    p_platform TEXT, p_tenant TEXT, p_user TEXT, p_request_id TEXT, p_cost BIGINT,
    p_guest TEXT, p_month TEXT, p_now TEXT, p_hash TEXT
) RETURNS TABLE (allowed INTEGER, pool_user TEXT, plan TEXT, team_plan TEXT,
                 remaining BIGINT, created_at TEXT, replayed BOOLEAN)
LANGUAGE plpgsql AS $$
DECLARE
    v_uplan TEXT; v_tplan TEXT;
    v_ulim BIGINT; v_umonthly BOOLEAN; v_tlim BIGINT := 0; v_tmonthly BOOLEAN := FALSE;
    v_uperiod TEXT; v_tperiod TEXT;
    v_tused BIGINT := 0; v_tgranted BIGINT := 0; v_uused BIGINT := 0; v_ugranted BIGINT := 0;
    v_choice INTEGER; v_team_left BIGINT; v_own_left BIGINT; v_left BIGINT;
BEGIN
    -- a replay needs no lock: the row, once committed, never changes
    RETURN QUERY SELECT c.allowed, c.pool_user, c.plan, c.team_plan, c.remaining,
                        c.created_at, TRUE
                 FROM charges c WHERE c.platform = p_platform AND c.request_id = p_request_id;
    IF FOUND THEN RETURN; END IF;

    PERFORM pg_advisory_xact_lock(hashtextextended(p_platform || ':' || p_tenant, 7411));

    -- the same request may have been charged while this one waited for the lock
    RETURN QUERY SELECT c.allowed, c.pool_user, c.plan, c.team_plan, c.remaining,
                        c.created_at, TRUE
                 FROM charges c WHERE c.platform = p_platform AND c.request_id = p_request_id;
    IF FOUND THEN RETURN; END IF;

    SELECT u.plan INTO v_uplan FROM users u JOIN plan_limits l
        ON l.config_hash = p_hash AND l.name = u.plan
        WHERE u.platform = p_platform AND u.tenant = p_tenant AND u.user_id = p_user;
    v_uplan := COALESCE(v_uplan, p_guest);
    SELECT t.plan INTO v_tplan FROM teams t JOIN plan_limits l
        ON l.config_hash = p_hash AND l.name = t.plan
        WHERE t.platform = p_platform AND t.tenant = p_tenant;

    SELECT l.lim, l.monthly INTO v_ulim, v_umonthly FROM plan_limits l
        WHERE l.config_hash = p_hash AND l.name = v_uplan;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'plan set % has no plan %', p_hash, v_uplan;
    END IF;
    v_uperiod := CASE WHEN v_umonthly THEN p_month ELSE 'lifetime' END;
    IF v_tplan IS NOT NULL THEN
        SELECT l.lim, l.monthly INTO v_tlim, v_tmonthly FROM plan_limits l
            WHERE l.config_hash = p_hash AND l.name = v_tplan;
        v_tperiod := CASE WHEN v_tmonthly THEN p_month ELSE 'lifetime' END;
        SELECT COALESCE(SUM(s.used), 0), COALESCE(SUM(s.granted), 0)
            INTO v_tused, v_tgranted FROM usage s
            WHERE s.platform = p_platform AND s.tenant = p_tenant AND s.user_id = ''
              AND s.period = v_tperiod;
    END IF;
    SELECT COALESCE(SUM(s.used), 0), COALESCE(SUM(s.granted), 0)
        INTO v_uused, v_ugranted FROM usage s
        WHERE s.platform = p_platform AND s.tenant = p_tenant AND s.user_id = p_user
          AND s.period = v_uperiod;

    v_team_left := CASE WHEN v_tlim < 0 THEN -1 ELSE v_tlim + v_tgranted - v_tused END;
    v_own_left := CASE WHEN v_ulim < 0 THEN -1 ELSE v_ulim + v_ugranted - v_uused END;
    IF v_tplan IS NOT NULL AND (v_tlim < 0 OR v_tused + p_cost <= v_tlim + v_tgranted) THEN
        v_choice := 1;
        v_left := CASE WHEN v_team_left < 0 THEN -1 ELSE v_team_left - p_cost END;
    ELSIF v_ulim < 0 OR v_uused + p_cost <= v_ulim + v_ugranted THEN
        v_choice := 2;
        v_left := CASE WHEN v_own_left < 0 THEN -1 ELSE v_own_left - p_cost END;
    ELSE
        v_choice := 0;
        v_left := GREATEST(v_own_left, 0);
    END IF;

    INSERT INTO charges (platform, request_id, tenant, user_id, pool_user, period, plan,
                         team_plan, cost, allowed, remaining, created_at)
    VALUES (p_platform, p_request_id, p_tenant, p_user,
            CASE v_choice WHEN 1 THEN '' ELSE p_user END,
            CASE v_choice WHEN 1 THEN v_tperiod ELSE v_uperiod END,
            v_uplan, v_tplan, p_cost, CASE WHEN v_choice > 0 THEN 1 ELSE 0 END, v_left, p_now)
    ON CONFLICT (platform, request_id) DO NOTHING;
    IF NOT FOUND THEN  -- the same id charged in another tenant's lock: the stored outcome
        RETURN QUERY SELECT c.allowed, c.pool_user, c.plan, c.team_plan, c.remaining,
                            c.created_at, TRUE
                     FROM charges c
                     WHERE c.platform = p_platform AND c.request_id = p_request_id;
        RETURN;
    END IF;
    RETURN QUERY SELECT CASE WHEN v_choice > 0 THEN 1 ELSE 0 END,
                        CASE v_choice WHEN 1 THEN '' ELSE p_user END,
                        v_uplan, v_tplan, v_left, p_now, FALSE;
END $$;
"""

PROCESSED_REQUESTS = """
CREATE TABLE processed_requests (
    platform    TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    claimed_at  TEXT NOT NULL,
    answered_at TEXT,
    PRIMARY KEY (platform, request_id)
);
CREATE INDEX processed_requests_open ON processed_requests (claimed_at)
    WHERE answered_at IS NULL;
"""

# Slack OAuth installations and one-use states (bot/state/installations.py).
APP_INSTALLATIONS = """
CREATE TABLE app_installations (
    platform      TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    team_id       TEXT NOT NULL,
    installation  TEXT NOT NULL,
    installed_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (platform, enterprise_id, team_id)
);
CREATE TABLE oauth_states (
    state      TEXT PRIMARY KEY,
    expires_at DOUBLE PRECISION NOT NULL
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", INITIAL),
    Migration(2, "processed_requests", PROCESSED_REQUESTS),
    Migration(3, "app_installations", APP_INSTALLATIONS),
)
