"""`revops insights` commands against a real store file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from contracts import Subject
from services.execution_agent.cli import insights_app
from services.execution_agent.insights import InsightRepository
from services.execution_agent.store import Store
from tests.unit.execution.conftest import make_flag

runner = CliRunner()


def _seed(db: Path) -> str:
    repo = InsightRepository(Store(db))
    repo.upsert_from_flag(
        Subject(account_id="ACC-2"),
        make_flag(insight_type="usage_decline", category="consumption_pattern"),
        "req-0",
    )
    return repo.upsert_from_flag(
        Subject(account_id="ACC-1", opportunity_id="OPP-1"), make_flag("critical"), "req-1"
    ).insight_id


def _run(db: Path, *args: str):
    return runner.invoke(insights_app, ["--db", str(db), *args], env={"COLUMNS": "200"})


def test_list_filters_and_json(tmp_path: Path) -> None:
    db = tmp_path / "revops.db"
    insight_id = _seed(db)
    out = _run(db, "list", "--account", "ACC-1", "--json")
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.output)
    assert row["insight_id"] == insight_id and row["effective_status"] == "open"
    out = _run(db, "list", "--category", "consumption_pattern")
    assert out.exit_code == 0
    assert "usage_decline" in out.output and "missing_data" not in out.output
    assert _run(db, "list", "--status", "bogus").exit_code != 0


def test_lifecycle_commands_and_show_audit(tmp_path: Path) -> None:
    db = tmp_path / "revops.db"
    insight_id = _seed(db)
    assert _run(db, "ack", insight_id, "--actor", "alice", "--note", "seen").exit_code == 0
    out = _run(db, "start", insight_id, "--actor", "bob", "--json")
    assert out.exit_code == 0 and json.loads(out.output)["status"] == "in_progress"
    assert _run(db, "resolve", insight_id, "--actor", "bob").exit_code == 0
    shown = json.loads(_run(db, "show", insight_id, "--json").output)
    assert shown["status"] == "resolved" and shown["resolved_at"]
    assert [(a["actor"], a["to_status"]) for a in shown["audit"]] == [
        ("execution_agent", "open"),
        ("alice", "acknowledged"),
        ("bob", "in_progress"),
        ("bob", "resolved"),
    ]
    table = _run(db, "show", insight_id)
    assert table.exit_code == 0 and "audit trail" in table.output and "alice" in table.output


def test_refusals_exit_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    db = tmp_path / "revops.db"
    insight_id = _seed(db)
    illegal = _run(db, "resolve", insight_id)
    assert illegal.exit_code == 1 and "cannot resolve" in illegal.output
    stale = _run(db, "ack", insight_id, "--expected-version", "7")
    assert stale.exit_code == 1 and "version 7" in stale.output
    missing = _run(db, "show", "nope")
    assert missing.exit_code == 1 and "not found" in missing.output
