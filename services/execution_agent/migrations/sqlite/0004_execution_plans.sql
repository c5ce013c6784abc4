-- A flow's planned jobs, written once when it starts. They were part of the execution's
-- state_data, which every delivery result rewrites: each job carries ~3 KB of template
-- context, so a flow of six jobs rewrote ~20 KB of unchanged plan with each of its six
-- results (its WAL pages, its JSON). The plans of the executions stored so far move here;
-- state_data keeps the rest (compact JSON, as the agent writes it).
-- postgresql/0004_execution_plans.sql is the shared twin.

CREATE TABLE IF NOT EXISTS revops_ai_execution_plans (
    request_id       TEXT PRIMARY KEY,
    planned_actions  TEXT NOT NULL
);

INSERT INTO revops_ai_execution_plans (request_id, planned_actions)
SELECT request_id, json_extract(state_data, '$.planned_actions')
FROM revops_ai_executions
WHERE json_type(state_data, '$.planned_actions') = 'array'
ON CONFLICT (request_id) DO NOTHING;

UPDATE revops_ai_executions
SET state_data = json_remove(state_data, '$.planned_actions')
WHERE json_type(state_data, '$.planned_actions') IS NOT NULL;
