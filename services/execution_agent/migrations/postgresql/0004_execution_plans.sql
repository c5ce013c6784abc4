-- PostgreSQL twin of sqlite/0004_execution_plans.sql: a flow's planned jobs in a table of
-- their own, written once, instead of inside state_data, which every result rewrites. The
-- plans stored so far move here (state_data comes back from jsonb: spaced differently, which
-- the agent reads the same).

CREATE TABLE IF NOT EXISTS revops_ai_execution_plans (
    request_id       TEXT PRIMARY KEY,
    planned_actions  TEXT NOT NULL
);

INSERT INTO revops_ai_execution_plans (request_id, planned_actions)
SELECT request_id, (state_data::jsonb -> 'planned_actions')::text
FROM revops_ai_executions
WHERE jsonb_typeof(state_data::jsonb -> 'planned_actions') = 'array'
ON CONFLICT (request_id) DO NOTHING;

UPDATE revops_ai_executions
SET state_data = (state_data::jsonb - 'planned_actions')::text
WHERE jsonb_exists(state_data::jsonb, 'planned_actions');
