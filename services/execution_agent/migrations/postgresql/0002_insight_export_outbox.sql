-- PostgreSQL twin of sqlite/0002_insight_export_outbox.sql: the outbox of the warehouse
-- export and the single-writer lease that lets one exporter of all the replicas drain it.

CREATE TABLE IF NOT EXISTS revops_ai_insight_export_outbox (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       TEXT COLLATE "C" NOT NULL UNIQUE,
    insight_id     TEXT COLLATE "C" NOT NULL,
    version        INTEGER NOT NULL,
    enqueued_at    TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS revops_ai_insight_export_lease (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   DOUBLE PRECISION NOT NULL
);
