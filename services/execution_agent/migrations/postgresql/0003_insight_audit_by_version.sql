-- PostgreSQL twin of sqlite/0003_insight_audit_by_version.sql: the export reads the audit
-- row of each change by (insight_id, version), not every change of the insight.

CREATE INDEX IF NOT EXISTS ix_insight_audit_version ON revops_ai_insight_audit (insight_id, version);
