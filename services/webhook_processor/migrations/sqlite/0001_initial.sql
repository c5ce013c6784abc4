-- The webhook processor's outbox, digest queue, attempt log and ticket ids
-- (services/webhook_processor/delivery_log.py).
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    lane_key INTEGER NOT NULL,
    kind TEXT NOT NULL,                -- job | digest
    payload TEXT NOT NULL,             -- ActionJob JSON, or {"mode", "jobs"} for a digest
    status TEXT NOT NULL,              -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    enqueued_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    error_code TEXT,
    error TEXT,
    result TEXT,                       -- final ActionResult(s) JSON, kept until published
    result_published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (destination, status, seq);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (result_published, status);
CREATE TABLE IF NOT EXISTS digest_queue (
    action_id TEXT PRIMARY KEY,
    destination TEXT NOT NULL,
    mode TEXT NOT NULL,
    job TEXT NOT NULL,
    queued_at REAL NOT NULL,
    digest_id TEXT
);
CREATE INDEX IF NOT EXISTS digest_open ON digest_queue (mode, digest_id, destination);
CREATE TABLE IF NOT EXISTS delivery_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    response_code INTEGER,
    latency_ms REAL,
    at TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS delivery_log_action ON delivery_log (action_id);
CREATE INDEX IF NOT EXISTS outbox_finished ON outbox (updated_at) WHERE result_published = 1;
CREATE INDEX IF NOT EXISTS delivery_log_at ON delivery_log (at);
CREATE TABLE IF NOT EXISTS tickets (
    action_id TEXT PRIMARY KEY,        -- the job that opened the ticket
    destination TEXT NOT NULL,
    ticket_id TEXT NOT NULL,           -- its id on the far side (Jira key, Zendesk id)
    opened_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_opened ON tickets (opened_at);
