"""The code database schema, shared by the builder, the catalog and the search index.

One SQLite file holds every code set. `codes.key` is the lookup key (upper case, no dots or
spaces); `codes.code` is the display form. Chapters of ICD-10-CM use keys like `CHAPTER4`
so that typing `4` never finds them. `details` is JSON with notes, dates, attributes and
source, so that new per-set facts need no migration.
"""

SCHEMA_VERSION = 1

CODES_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS code_sets (
    system   TEXT PRIMARY KEY,      -- icd10cm | icd10pcs | hcpcs | cpt
    label    TEXT NOT NULL,         -- ICD-10-CM
    release  TEXT NOT NULL,         -- FY2026, 2026-01 ...
    source   TEXT NOT NULL,         -- where the file came from
    counts   TEXT NOT NULL          -- JSON: {"codes": n, "billable": n, "headers": n, ...}
);
CREATE TABLE IF NOT EXISTS codes (
    id           INTEGER PRIMARY KEY,
    system       TEXT NOT NULL,
    code         TEXT NOT NULL,
    key          TEXT NOT NULL,
    kind         TEXT NOT NULL,
    title        TEXT NOT NULL,
    short_title  TEXT NOT NULL DEFAULT '',
    billable     INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'active',
    parent_id    INTEGER REFERENCES codes(id),
    sort_order   INTEGER NOT NULL,
    search_terms TEXT NOT NULL DEFAULT '',
    details      TEXT NOT NULL DEFAULT '{}',
    UNIQUE (system, code)
);
CREATE INDEX IF NOT EXISTS codes_key ON codes(key);
CREATE INDEX IF NOT EXISTS codes_parent ON codes(parent_id, sort_order);
"""

# Coding knowledge beside the codes (issue 10): each source writes its own tables, read by
# `bot.codes.knowledge`. Keys are code keys (upper case, no dots), as in `codes.key`.
KNOWLEDGE_DDL = """
CREATE TABLE IF NOT EXISTS kb_sources (
    name     TEXT PRIMARY KEY,      -- ms-drg, hcc, poa-exempt, gems, icd9-pcs, guidelines
    label    TEXT NOT NULL,
    release  TEXT NOT NULL,
    source   TEXT NOT NULL,
    counts   TEXT NOT NULL          -- JSON
);
CREATE TABLE IF NOT EXISTS drg_versions (
    version        TEXT PRIMARY KEY, -- v43.1
    fiscal_year    INTEGER NOT NULL,
    effective_from TEXT NOT NULL,    -- ISO date the version starts applying to discharges
    source         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drg_dx_severity (
    version    TEXT NOT NULL,
    key        TEXT NOT NULL,
    level      TEXT NOT NULL,       -- CC | MCC
    excl_group TEXT NOT NULL DEFAULT '',  -- PDX exclusion collection ('' when unknown)
    hac        TEXT NOT NULL DEFAULT '',  -- HAC category number
    PRIMARY KEY (version, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS drg_cc_exclusions (
    version    TEXT NOT NULL,
    excl_group TEXT NOT NULL,
    pdx_keys   TEXT NOT NULL,       -- space-separated principal diagnoses that exclude the CC
    PRIMARY KEY (version, excl_group)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS drg_groups (
    version  TEXT NOT NULL,
    drg      TEXT NOT NULL,         -- 291
    title    TEXT NOT NULL,
    mdc      TEXT NOT NULL,         -- 05, or '' for pre-MDC
    type     TEXT NOT NULL,         -- medical | surgical
    PRIMARY KEY (version, drg)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS drg_weights (
    fiscal_year INTEGER NOT NULL,
    drg      TEXT NOT NULL,
    weight   REAL NOT NULL,
    gmlos    REAL,
    amlos    REAL,
    post_acute INTEGER NOT NULL,
    special_pay INTEGER NOT NULL,
    PRIMARY KEY (fiscal_year, drg)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS drg_mdc (
    mdc   TEXT PRIMARY KEY,
    title TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS drg_or_procedures (
    key      TEXT PRIMARY KEY,
    versions TEXT NOT NULL          -- space-separated versions in which the code is O.R.
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hcc_map (
    year  INTEGER NOT NULL,         -- payment year
    key   TEXT NOT NULL,
    model TEXT NOT NULL,            -- V28 | V24 | ESRD V24 | RxHCC V08 ...
    hcc   TEXT NOT NULL,
    PRIMARY KEY (year, key, model, hcc)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hcc_labels (
    model TEXT NOT NULL,
    hcc   TEXT NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (model, hcc)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS poa_exempt (
    key   TEXT PRIMARY KEY,
    title TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS icd9_codes (
    key   TEXT NOT NULL,            -- 25000
    kind  TEXT NOT NULL,            -- dx | sg (diagnosis / procedure)
    code  TEXT NOT NULL,            -- 250.00
    title TEXT NOT NULL,
    short_title TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gem_entries (
    direction TEXT NOT NULL,        -- 9to10 | 10to9 (dx) | 9to10pcs
    source    TEXT NOT NULL,        -- key in the source code set
    target    TEXT NOT NULL,        -- key in the target code set ('' for no map)
    flags     TEXT NOT NULL,        -- the GEM's five flags: approximate, no map, combination,
                                    -- scenario, choice list
    PRIMARY KEY (direction, source, target, flags)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS gem_target ON gem_entries(direction, target);
CREATE TABLE IF NOT EXISTS guideline_sections (
    id       INTEGER PRIMARY KEY,
    section  TEXT NOT NULL UNIQUE,  -- I.C.1.d
    heading  TEXT NOT NULL,
    chapter  INTEGER,               -- ICD-10-CM chapter of a I.C.n section
    page     INTEGER NOT NULL,
    body     TEXT NOT NULL          -- the section's own text, as extracted
);
"""
