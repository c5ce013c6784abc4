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
    assert missing.exit_code == 1 and "no insight id is or starts with 'nope'" in missing.output


def _seed_many(db: Path, n: int) -> list[str]:
    """`n` insights on different accounts with long titles (and display names)."""
    repo = InsightRepository(Store(db))
    ids = []
    for k in range(n):
        flag = make_flag(
            "high",
            insight_type="usage_anomaly",
            category="churn_risk",
            code="churn_risk_escalation_after_a_long_and_steady_decline_of_usage",
        )
        subject = Subject(account_id=f"001{k:012d}", account_name=f"Account number {k}")
        ids.append(
            repo.upsert_from_flag(
                subject, flag, f"req-{k}", payload={"account_name": subject.account_name}
            ).insight_id
        )
    return ids


def _in_terminal(db: Path, columns: int, *args: str) -> str:
    """The command's output on a pseudo-terminal `columns` wide (what a person sees)."""
    import os
    import pty
    import subprocess
    import sys

    parent, child = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "REVOPS_INSIGHTS_DB": str(db)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "insights", *args],
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(parent, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(parent)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def test_list_never_cuts_ids_on_a_terminal_and_has_a_title_column(tmp_path: Path) -> None:
    db = tmp_path / "revops.db"
    ids = _seed_many(db, 3)
    for columns in (80, 120):
        screen = _in_terminal(db, columns, "list").replace("\r\n", "\n")
        assert "title" in screen and "type" in screen, screen
        for insight_id in ids:
            assert insight_id in screen, (columns, screen)
        assert "001000000000002" in screen
    wide = _run(db, "list")  # not a terminal: nothing shortened
    assert (
        "Churn risk escalation after a long and steady decline of usage - Account number 2"
        in wide.output
    )


def test_list_as_csv_and_json_name_the_same_fields(tmp_path: Path) -> None:
    import csv
    import io

    db = tmp_path / "revops.db"
    ids = _seed_many(db, 2)
    out = _run(db, "list", "--csv")
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert {r["type"] for r in rows} == {"usage_anomaly"}
    assert rows[0]["title"].startswith("Churn risk escalation")
    assert rows[0]["account_name"].startswith("Account number")
    assert rows[0]["category"] == "churn_risk" and rows[0]["opportunity_id"] == ""
    as_json = json.loads(_run(db, "list", "--json").output)
    assert sorted(r["insight_id"] for r in as_json) == sorted(ids)


def test_commands_accept_an_unambiguous_id_prefix(tmp_path: Path) -> None:
    db = tmp_path / "revops.db"
    ids = _seed_many(db, 40)  # 40 ids, 16 hex digits: some share their first character
    target = ids[0]
    prefix = next(
        target[:n] for n in range(1, 37) if sum(i.startswith(target[:n]) for i in ids) == 1
    )
    shown = _run(db, "show", prefix, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["insight_id"] == target
    acked = _run(db, "ack", prefix, "--note", "on it")
    assert acked.exit_code == 0 and acked.output.startswith(f"{target}: acknowledged")
    shared = next(i[0] for i in ids if sum(j.startswith(i[0]) for j in ids) > 1)
    ambiguous = _run(db, "ack", shared)
    assert ambiguous.exit_code == 1
    assert f"insight id {shared!r} is ambiguous" in ambiguous.output
    assert "Traceback" not in ambiguous.output


def test_refusal_names_the_status_in_words(tmp_path: Path) -> None:
    db = tmp_path / "revops.db"
    insight_id = _seed(db)
    assert _run(db, "ack", insight_id).exit_code == 0
    again = _run(db, "ack", insight_id)
    assert again.exit_code == 1
    assert f"cannot ack insight {insight_id}: it is acknowledged; ack is allowed from open" in (
        again.output
    )
    assert "InsightStatus" not in again.output


def test_show_names_the_insight_as_the_list_does(tmp_path: Path) -> None:
    db = tmp_path / "revops.db"
    [insight_id] = _seed_many(db, 1)
    listed = _run(db, "list").output
    shown = _run(db, "show", insight_id).output
    for words in ("usage_anomaly", "Churn risk escalation", "Account number 0"):
        assert words in listed and words in shown, words
