"""Exported insights joined with the warehouse in one query (`revops warehouse query`): the
data agent's DuckDB warehouse and the export file the execution agent writes, attached
read-only side by side."""

from __future__ import annotations

from pathlib import Path

import duckdb
from typer.testing import CliRunner

from contracts import Subject
from services.cli.warehouse import warehouse_app
from services.execution_agent.insights import InsightRepository
from services.execution_agent.store import Store
from services.execution_agent.warehouse_export.duckdb_sink import DuckDBInsightSink
from services.execution_agent.warehouse_export.exporter import InsightExporter
from tests.unit.execution.conftest import make_flag

from .conftest import Demo


def _export_one_insight_per_deal(demo: Demo, tmp_path: Path, deals: int) -> dict[str, str]:
    """An insight for each of the first `deals` opportunities, one of them acknowledged, all
    exported; returns {opportunity_id: status}."""
    repo = InsightRepository(Store(tmp_path / "revops.db"))
    statuses = {}
    for n, (opportunity_id, account_id) in enumerate(
        demo.sql(
            "SELECT opportunity_id, sf_account_id FROM opportunity_d ORDER BY 1 LIMIT ?", deals
        )
    ):
        subject = Subject(account_id=account_id, opportunity_id=opportunity_id)
        insight = repo.upsert_from_flag(subject, make_flag(), f"req-{n}")
        if n == 0:
            insight = repo.transition(insight.insight_id, "ack", "alice")
        statuses[opportunity_id] = insight.status.value
    export_file = tmp_path / "insights.duckdb"
    report = InsightExporter(repo.store, lambda: DuckDBInsightSink(export_file)).export()
    assert report.changes == deals + 1
    return statuses


def test_insights_join_the_warehouse_tables_in_one_query(demo: Demo, tmp_path: Path) -> None:
    statuses = _export_one_insight_per_deal(demo, tmp_path, deals=3)
    sql = (
        "SELECT o.opportunity_id, o.name, a.sf_account_name, i.status, i.priority "
        "FROM revops_ai_insights i JOIN opportunity_d o USING (opportunity_id) "
        "JOIN salesforce_account_d a ON a.sf_account_id = o.sf_account_id ORDER BY 1"
    )
    args = ["query", sql, "--path", str(demo.path), "--insights", str(tmp_path / "insights.duckdb")]
    result = CliRunner().invoke(warehouse_app, args)
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.strip().splitlines()
    assert header.split("\t") == ["opportunity_id", "name", "sf_account_name", "status", "priority"]
    rows = [line.split("\t") for line in lines]
    assert {r[0]: r[3] for r in rows} == statuses
    names = dict(demo.sql("SELECT opportunity_id, name FROM opportunity_d"))
    assert all(r[1] == names[r[0]] for r in rows)

    # The same join as the README documents it, in any DuckDB client.
    con = duckdb.connect(str(demo.path), read_only=True)
    con.execute(f"ATTACH '{tmp_path / 'insights.duckdb'}' AS insights (READ_ONLY)")
    joined = con.execute(
        "SELECT count(*) FROM insights.revops_ai_insights i "
        "JOIN opportunity_d o USING (opportunity_id)"
    ).fetchone()
    con.close()
    assert joined == (3,)


def test_query_errors_are_one_line(demo: Demo, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(
        warehouse_app,
        [
            "query",
            "SELECT * FROM revops_ai_insights",
            "--path",
            str(demo.path),
            "--insights",
            str(tmp_path / "none.duckdb"),
        ],
    )
    assert missing.exit_code == 1
    assert (
        "no insights exported yet" in missing.stderr and "revops insights export" in missing.stderr
    )
    bad = runner.invoke(warehouse_app, ["query", "SELEKT 1", "--path", str(demo.path)])
    assert bad.exit_code == 1 and bad.stderr.startswith("query failed: Parser Error")
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.output
