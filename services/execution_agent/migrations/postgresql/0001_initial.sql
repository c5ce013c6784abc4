-- PostgreSQL twin of sqlite/0001_initial.sql (REVOPS_DATABASE_URL): the same tables and
-- columns, so one set of repository SQL serves both engines. JSON columns are TEXT (cast to
-- jsonb where a path is read); timestamps are ISO-8601 UTC text of fixed width, which sorts
-- like the instant it names. Ids compare byte-wise (COLLATE "C"), as in SQLite, so an id
-- prefix is an index range.

CREATE TABLE IF NOT EXISTS revops_ai_insights (
    insight_id          TEXT COLLATE "C" PRIMARY KEY,
    request_id          TEXT NOT NULL,
    flow_id             TEXT,
    correlation_id      TEXT,
    source_agent        TEXT NOT NULL,
    category            TEXT NOT NULL,
    type                TEXT NOT NULL,
    title               TEXT NOT NULL,
    description         TEXT NOT NULL,
    status              TEXT NOT NULL,
    priority            TEXT NOT NULL,
    confidence          DOUBLE PRECISION NOT NULL,
    impact_score        DOUBLE PRECISION NOT NULL,
    urgency_score       DOUBLE PRECISION NOT NULL,
    account_id          TEXT NOT NULL,
    opportunity_id      TEXT,
    -- account_id|opportunity_id: one column so the partial unique index below can use it.
    subject_key         TEXT NOT NULL,
    payload             TEXT NOT NULL DEFAULT '{}',
    evidence            TEXT NOT NULL DEFAULT '[]',
    recommended_actions TEXT NOT NULL DEFAULT '[]',
    actions_taken       TEXT NOT NULL DEFAULT '[]',
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    acknowledged_at     TEXT,
    started_at          TEXT,
    resolved_at         TEXT,
    dismissed_at        TEXT,
    expired_at          TEXT,
    expires_at          TEXT,
    version             INTEGER NOT NULL
);

-- The rule "one open insight per subject and type" as a constraint, not only as code:
-- even two processes racing past the application check cannot both insert.
CREATE UNIQUE INDEX IF NOT EXISTS ux_insights_one_active
    ON revops_ai_insights (subject_key, type)
    WHERE status IN ('open', 'acknowledged', 'in_progress');

CREATE INDEX IF NOT EXISTS ix_insights_status ON revops_ai_insights (status, updated_at);
CREATE INDEX IF NOT EXISTS ix_insights_account ON revops_ai_insights (account_id, updated_at);

CREATE TABLE IF NOT EXISTS revops_ai_insight_audit (
    audit_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    insight_id   TEXT COLLATE "C" NOT NULL REFERENCES revops_ai_insights (insight_id),
    version      INTEGER NOT NULL,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    note         TEXT,
    changes      TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX IF NOT EXISTS ix_insight_audit_insight ON revops_ai_insight_audit (insight_id, audit_id);

-- Seed schema ("Durable Persistent State"), column for column.
CREATE TABLE IF NOT EXISTS revops_ai_executions (
    request_id        TEXT PRIMARY KEY,
    flow_id           TEXT,
    version           INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    state_data        TEXT NOT NULL,
    execution_status  TEXT NOT NULL
);

-- One current health record per account (consumption analyses keep it fresh).
CREATE TABLE IF NOT EXISTS revops_ai_health (
    account_id   TEXT PRIMARY KEY,
    score        INTEGER,
    churn_risk   TEXT,
    band         TEXT,
    as_of        TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    request_id   TEXT,
    detail       TEXT NOT NULL DEFAULT '{}'
);

-- Every analysis received, kept with its time (services/execution_agent/history.py): the score
-- history of a deal and the health and churn risk of an account over time. `result` is the
-- whole analysis (factors, evidence, flags, recommendations, mitigations) as it was decided.
CREATE TABLE IF NOT EXISTS revops_ai_analysis_history (
    request_id      TEXT PRIMARY KEY,
    analysis_type   TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    opportunity_id  TEXT,
    analyzed_at     TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    headline_score  INTEGER,
    headline_band   TEXT,
    scores          TEXT NOT NULL DEFAULT '{}',
    result          TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_history_opportunity
    ON revops_ai_analysis_history (opportunity_id, analyzed_at);
CREATE INDEX IF NOT EXISTS ix_history_account
    ON revops_ai_analysis_history (account_id, analysis_type, analyzed_at);

-- The newest analysis per subject and analysis type (kept by history.py with each record),
-- so "deals by score band" and "pipeline at risk" are one indexed join, not a scan of history.
CREATE TABLE IF NOT EXISTS revops_ai_latest_analysis (
    subject_key     TEXT NOT NULL,
    analysis_type   TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    opportunity_id  TEXT,
    request_id      TEXT NOT NULL,
    analyzed_at     TEXT NOT NULL,
    headline_score  INTEGER,
    headline_band   TEXT,
    PRIMARY KEY (subject_key, analysis_type)
);

CREATE INDEX IF NOT EXISTS ix_latest_opportunity
    ON revops_ai_latest_analysis (opportunity_id, analysis_type, headline_score, headline_band);

-- Read paths of the web console (services/console): recent flows, changes since a moment.
CREATE INDEX IF NOT EXISTS ix_executions_created ON revops_ai_executions (created_at);
CREATE INDEX IF NOT EXISTS ix_health_band ON revops_ai_health (band, score);
CREATE INDEX IF NOT EXISTS ix_insight_audit_at ON revops_ai_insight_audit (at);
CREATE INDEX IF NOT EXISTS ix_insights_subject ON revops_ai_insights (subject_key, updated_at);
CREATE INDEX IF NOT EXISTS ix_insights_created ON revops_ai_insights (created_at);
CREATE INDEX IF NOT EXISTS ix_insights_resolved ON revops_ai_insights (resolved_at);
-- The inbox order (severity, then the freshest): a page is read off the index, no sort.
CREATE INDEX IF NOT EXISTS ix_insights_rank
    ON revops_ai_insights (impact_score DESC, updated_at DESC, insight_id);
-- Counts by status and severity come from the index alone (expiry and subject included).
CREATE INDEX IF NOT EXISTS ix_insights_counts
    ON revops_ai_insights (status, priority, expires_at, subject_key);
CREATE INDEX IF NOT EXISTS ix_insights_updated ON revops_ai_insights (updated_at);

-- Every notification, ticket and ticket update the planner sent out for an insight event
-- (routing.yaml `send_on`): the memory behind per-route cooldowns and "one ticket per
-- insight, updated after that". Written in the same transaction as the execution.
CREATE TABLE IF NOT EXISTS revops_ai_notifications (
    -- SQLite's implicit rowid, made explicit: the tie-break of "newest" (notifications.py).
    rowid         BIGINT GENERATED ALWAYS AS IDENTITY,
    action_id     TEXT PRIMARY KEY,
    route         TEXT NOT NULL,
    subject_key   TEXT NOT NULL,
    insight_id    TEXT NOT NULL,
    insight_type  TEXT NOT NULL,
    event         TEXT NOT NULL,
    priority      TEXT NOT NULL,
    -- tickets: the action that opened the ticket (this row's own id when it opened it)
    ticket_of     TEXT,
    request_id    TEXT NOT NULL,
    sent_at       TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_notifications_route_subject
    ON revops_ai_notifications (route, subject_key, sent_at);
