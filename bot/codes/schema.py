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
