"""Insights exported to the analytics warehouse by an outbox (docs/insights-export.md).

Every insight change (creation, re-run, lifecycle transition, action taken) writes an outbox
row in the transaction of the change (`outbox.enqueue_export`, called with the audit row).
The exporter (`exporter.InsightExporter`: the execution agent's housekeeping job and
`revops insights export`) drains it into the warehouse: `revops_ai_insights` (current state,
one row per insight) and `revops_ai_insight_audit` (one row per change, keyed by its event
id). Targets: a DuckDB file of its own in the embedded mode (`duckdb_sink`), Firebolt in
production (`firebolt_sink`).
"""
