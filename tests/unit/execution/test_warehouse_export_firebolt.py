"""The insight export into Firebolt at the HTTP layer: the real firebolt-sdk talks to a fake
Firebolt (tests/support/fake_firebolt.py) whose engine is an in-memory DuckDB, so the tests
check the statements and server-side parameters sent and the tables they leave behind.
Never run against a live Firebolt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from contracts import Subject
from services.execution_agent.insights import InsightRepository
from services.execution_agent.store import Store
from services.execution_agent.warehouse_export.exporter import InsightExporter
from services.execution_agent.warehouse_export.firebolt_sink import FireboltInsightSink
from services.execution_agent.warehouse_export.outbox import ExportOutbox
from services.execution_agent.warehouse_export.sink import ExportTargetError
from tests.support.fake_firebolt import FIREBOLT_ENV, FakeFirebolt
from tests.unit.execution.conftest import make_flag

DEAL = Subject(account_id="ACC-1", opportunity_id="OPP-1")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFirebolt]:
    server = FakeFirebolt(duckdb.connect())
    server.install(monkeypatch)
    yield server
    server.db.close()


@pytest.fixture
def repo(tmp_path: Path) -> InsightRepository:
    return InsightRepository(Store(tmp_path / "revops.db"))


def _exporter(repo: InsightRepository) -> InsightExporter:
    return InsightExporter(repo.store, lambda: FireboltInsightSink.from_env(FIREBOLT_ENV))


def _rows(fake: FakeFirebolt, sql: str) -> list[tuple[Any, ...]]:
    return fake.db.execute(sql).fetchall()


def _writes(fake: FakeFirebolt, since: int = 0) -> list[str]:
    return [
        sql.split(" (")[0]
        for sql, _, _ in fake.queries[since:]
        if sql.startswith(("INSERT", "DELETE"))
    ]


def test_export_creates_the_tables_and_writes_through_parameters(
    fake: FakeFirebolt, repo: InsightRepository
) -> None:
    deal = repo.upsert_from_flag(DEAL, make_flag(), "req-1")
    repo.transition(deal.insight_id, "ack", "alice", "it's fine")
    report = _exporter(repo).export()
    assert (report.changes, report.insights, report.pending) == (2, 1, 0)
    assert fake.primary_indexes == {
        "revops_ai_insights": "insight_id",
        "revops_ai_insight_audit": "event_id",
    }
    assert _rows(fake, "SELECT insight_id, status, version FROM revops_ai_insights") == [
        (deal.insight_id, "acknowledged", 2)
    ]
    assert _rows(
        fake, "SELECT version, action, actor, note FROM revops_ai_insight_audit ORDER BY version"
    ) == [(1, "create", "execution_agent", None), (2, "ack", "alice", "it's fine")]
    inserts = [(sql, values) for sql, values, _ in fake.queries if sql.startswith("INSERT")]
    assert len(inserts) == 2
    for sql, values in inserts:
        assert deal.insight_id in values and deal.insight_id not in sql  # values travel apart
        assert "it's fine" not in sql
        assert "CAST($" in sql and " AS TIMESTAMP)" in sql


def test_a_newer_version_replaces_the_row_and_the_trail_grows(
    fake: FakeFirebolt, repo: InsightRepository
) -> None:
    deal = repo.upsert_from_flag(DEAL, make_flag(), "req-1")
    exporter = _exporter(repo)
    exporter.export()
    repo.transition(deal.insight_id, "start", "bob")
    repo.transition(deal.insight_id, "resolve", "bob")
    assert exporter.export().changes == 2
    assert _rows(fake, "SELECT status, version FROM revops_ai_insights") == [("resolved", 3)]
    assert _rows(fake, "SELECT count(*) FROM revops_ai_insight_audit") == [(3,)]


def test_re_exporting_a_batch_writes_nothing(fake: FakeFirebolt, repo: InsightRepository) -> None:
    repo.upsert_from_flag(DEAL, make_flag(), "req-1")
    batch = ExportOutbox(repo.store).next_batch(10)
    assert batch is not None
    sink = FireboltInsightSink.from_env(FIREBOLT_ENV)
    sink.write(batch)
    before = (
        _rows(fake, "SELECT * FROM revops_ai_insights"),
        _rows(fake, "SELECT * FROM revops_ai_insight_audit"),
    )
    sent = len(fake.queries)
    sink.write(batch)
    sink.close()
    assert _writes(fake, sent) == ["DELETE FROM revops_ai_insights WHERE"]  # no INSERT
    assert (
        _rows(fake, "SELECT * FROM revops_ai_insights"),
        _rows(fake, "SELECT * FROM revops_ai_insight_audit"),
    ) == before


def test_a_crash_before_the_delete_is_finished_by_the_re_export(
    fake: FakeFirebolt, repo: InsightRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = repo.upsert_from_flag(DEAL, make_flag(), "req-1")
    exporter = _exporter(repo)
    exporter.export()
    repo.transition(deal.insight_id, "ack", "alice")

    def crash(self: FireboltInsightSink, newest: Any) -> None:
        raise ExportTargetError("connection lost")

    with monkeypatch.context() as patch:
        patch.setattr(FireboltInsightSink, "_delete_superseded", crash)
        with pytest.raises(ExportTargetError):
            exporter.export()
    # Both versions are there for now: the insight never disappears for a reader.
    assert _rows(fake, "SELECT version FROM revops_ai_insights ORDER BY 1") == [(1,), (2,)]
    assert exporter.export().changes == 1
    assert _rows(fake, "SELECT status, version FROM revops_ai_insights") == [("acknowledged", 2)]
    assert _rows(fake, "SELECT count(*) FROM revops_ai_insight_audit") == [(2,)]


def test_missing_settings_are_named() -> None:
    with pytest.raises(ExportTargetError, match="REVOPS_FIREBOLT_ENGINE"):
        FireboltInsightSink.from_env(
            {k: v for k, v in FIREBOLT_ENV.items() if not k.endswith("ENGINE")}
        )
