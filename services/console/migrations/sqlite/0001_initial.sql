-- The console's own tables (services/console/db.py): sessions, sign-ins under way, its audit
-- of replays, the directory copied from the warehouse and the search index. They live in
-- console.db, next to the execution agent's revops.db (attached); `IF NOT EXISTS` adopts a
-- console.db made before the schema was versioned.

CREATE TABLE IF NOT EXISTS console_sessions (
    session_hash TEXT PRIMARY KEY,
    user         TEXT NOT NULL,
    role         TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL,
    flash        TEXT
);
CREATE INDEX IF NOT EXISTS ix_console_sessions_expiry ON console_sessions (expires_at);

CREATE TABLE IF NOT EXISTS console_oidc_pending (
    state_hash   TEXT PRIMARY KEY,
    nonce        TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    created_at   REAL NOT NULL
);

-- Changes made from the console that have no audit trail of their own (dead-letter replays;
-- insight changes go to revops_ai_insight_audit with the user as actor).
CREATE TABLE IF NOT EXISTS console_audit (
    audit_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    role         TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT ''
);

-- The directory: a copy of the warehouse's people, accounts and deals (services.console.
-- directory), refreshed on a timer, so owner and team filters are joins, not warehouse calls.
CREATE TABLE IF NOT EXISTS console_people (
    owner_id     TEXT PRIMARY KEY,
    name         TEXT,
    email        TEXT,
    title        TEXT
);
CREATE TABLE IF NOT EXISTS console_accounts (
    account_id      TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    customer_class  TEXT,
    owner_id        TEXT,
    industry        TEXT,
    region          TEXT
);
CREATE INDEX IF NOT EXISTS ix_console_accounts_owner ON console_accounts (owner_id);
CREATE TABLE IF NOT EXISTS console_deals (
    opportunity_id  TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    stage           TEXT NOT NULL,
    amount          REAL,
    close_date      TEXT,
    owner_id        TEXT,
    is_open         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_console_deals_account ON console_deals (account_id);
CREATE INDEX IF NOT EXISTS ix_console_deals_open ON console_deals (is_open, owner_id);
CREATE INDEX IF NOT EXISTS ix_console_deals_amount
    ON console_deals (is_open, amount DESC, opportunity_id);
-- One row per insight subject (`account|opportunity` as the insights table writes it).
CREATE TABLE IF NOT EXISTS console_subjects (
    subject_key     TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    opportunity_id  TEXT,
    name            TEXT NOT NULL,
    owner_id        TEXT,
    team            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_console_subjects_owner ON console_subjects (owner_id);
CREATE INDEX IF NOT EXISTS ix_console_subjects_team ON console_subjects (team);
CREATE INDEX IF NOT EXISTS ix_console_deals_stage ON console_deals (is_open, stage);

-- Substring search (services.console.search): one document per insight, deal or account;
-- the document's id is its row in the trigram index.
CREATE TABLE IF NOT EXISTS console_search_docs (
    id    INTEGER PRIMARY KEY,
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    UNIQUE (kind, key)
);
CREATE VIRTUAL TABLE IF NOT EXISTS console_search USING fts5(body, tokenize = 'trigram');
CREATE TABLE IF NOT EXISTS console_search_mark (
    kind  TEXT PRIMARY KEY,
    mark  TEXT NOT NULL
);
