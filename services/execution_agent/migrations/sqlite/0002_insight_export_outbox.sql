-- The outbox of the warehouse export (services/execution_agent/warehouse_export/): one row
-- per insight change (creation, re-run, lifecycle transition, action taken), written in the
-- same transaction as the change and its audit row, deleted once the change is in the
-- warehouse. postgresql/0002_insight_export_outbox.sql is the shared twin.

CREATE TABLE IF NOT EXISTS revops_ai_insight_export_outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- the change's id in the warehouse's audit table: derived from (insight_id, version)
    event_id       TEXT NOT NULL UNIQUE,
    insight_id     TEXT NOT NULL,
    version        INTEGER NOT NULL,
    enqueued_at    TEXT NOT NULL
);

-- One exporter at a time drains the outbox, in order (the single-writer lease): `holder`
-- is its token, `until` when the lease runs out (Unix seconds) unless renewed. A crashed
-- exporter's lease runs out and the next one resumes where it stopped.
CREATE TABLE IF NOT EXISTS revops_ai_insight_export_lease (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   REAL NOT NULL
);
