-- The export reads the audit row of each change it carries by (insight_id, version): with
-- only the (insight_id, audit_id) index it read every change of every insight in a batch,
-- so a run's cost grew with each insight's history (an insight re-run daily gains a row a
-- day). postgresql/0003_insight_audit_by_version.sql is the shared twin.

CREATE INDEX IF NOT EXISTS ix_insight_audit_version ON revops_ai_insight_audit (insight_id, version);
