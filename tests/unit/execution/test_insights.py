"""Insight lifecycle, audit trail, optimistic concurrency, one-open-per-subject, expiry."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path

import pytest

from contracts import Subject
from contracts.common import utcnow
from services.common.stores.database import Database
from services.execution_agent.insights import (
    IllegalTransitionError,
    InsightError,
    InsightRepository,
    InsightStatus,
    StaleVersionError,
)
from services.execution_agent.store import Store
from tests.unit.execution.conftest import make_flag

SUBJECT = Subject(account_id="ACC-1", opportunity_id="OPP-1")


def _create(repo: InsightRepository, request_id: str = "req-1", **flag_kwargs):
    return repo.upsert_from_flag(SUBJECT, make_flag(**flag_kwargs), request_id, "flow-1", "corr-1")


def test_new_insight_is_open_with_creation_audit(insights: InsightRepository) -> None:
    insight = _create(insights)
    assert insight.status is InsightStatus.OPEN
    assert insight.version == 1
    assert insight.expires_at is not None and insight.expires_at > insight.created_at
    stored = insights.get(insight.insight_id)
    assert stored == insight
    [row] = insights.audit(insight.insight_id)
    assert (row.action, row.from_status, row.to_status) == ("create", None, "open")


def test_full_lifecycle_stamps_each_transition_and_audits(insights: InsightRepository) -> None:
    insight = _create(insights)
    acked = insights.transition(insight.insight_id, "ack", "alice", "looking")
    started = insights.transition(insight.insight_id, "start", "bob", "on it")
    resolved = insights.transition(insight.insight_id, "resolve", "bob", "call booked")
    assert acked.acknowledged_at is not None and acked.status is InsightStatus.ACKNOWLEDGED
    assert started.started_at is not None and started.status is InsightStatus.IN_PROGRESS
    assert resolved.resolved_at is not None and resolved.status is InsightStatus.RESOLVED
    assert resolved.version == 4
    stored = insights.get(insight.insight_id)
    assert stored.status is InsightStatus.RESOLVED
    assert stored.acknowledged_at and stored.started_at and stored.resolved_at
    assert stored.acknowledged_at <= stored.started_at <= stored.resolved_at
    trail = [
        (a.actor, a.action, a.from_status, a.to_status, a.note)
        for a in insights.audit(insight.insight_id)
    ]
    assert trail[1:] == [
        ("alice", "ack", "open", "acknowledged", "looking"),
        ("bob", "start", "acknowledged", "in_progress", "on it"),
        ("bob", "resolve", "in_progress", "resolved", "call booked"),
    ]
    assert [a.version for a in insights.audit(insight.insight_id)] == [1, 2, 3, 4]


@pytest.mark.parametrize("first", [None, "ack", "start"])
def test_dismiss_from_any_open_state(insights: InsightRepository, first: str | None) -> None:
    insight = _create(insights)
    if first:
        insights.transition(insight.insight_id, first, "alice")
    dismissed = insights.transition(insight.insight_id, "dismiss", "alice", "not relevant")
    assert dismissed.status is InsightStatus.DISMISSED and dismissed.dismissed_at is not None


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "resolve"),  # open -> resolved skips the work
        (["ack"], "ack"),
        (["start"], "ack"),  # no way back
        (["start", "resolve"], "dismiss"),  # closed is closed
        (["dismiss"], "start"),
    ],
)
def test_illegal_transitions_refused_and_leave_no_trace(
    insights: InsightRepository, path: list[str], illegal: str
) -> None:
    insight = _create(insights)
    for action in path:
        insights.transition(insight.insight_id, action, "alice")
    before = insights.get(insight.insight_id)
    audit_before = insights.audit(insight.insight_id)
    with pytest.raises(IllegalTransitionError, match=f"cannot {illegal}"):
        insights.transition(insight.insight_id, illegal, "alice")
    assert insights.get(insight.insight_id) == before
    assert insights.audit(insight.insight_id) == audit_before


def test_unknown_action_and_missing_insight_are_errors(insights: InsightRepository) -> None:
    insight = _create(insights)
    with pytest.raises(InsightError, match="unknown action"):
        insights.transition(insight.insight_id, "reopen", "alice")
    with pytest.raises(InsightError, match="not found"):
        insights.transition("nope", "ack", "alice")


def test_stale_version_is_refused(insights: InsightRepository) -> None:
    insight = _create(insights)
    insights.transition(insight.insight_id, "ack", "alice", expected_version=1)
    with pytest.raises(StaleVersionError, match="version 1, it is now version 2"):
        insights.transition(insight.insight_id, "dismiss", "bob", expected_version=1)
    assert insights.get(insight.insight_id).status is InsightStatus.ACKNOWLEDGED


def test_rerun_updates_the_open_insight_with_history(insights: InsightRepository) -> None:
    first = _create(insights, severity="medium")
    insights.transition(first.insight_id, "ack", "alice")
    second = _create(insights, "req-2", severity="critical", description="Still no calls")
    assert second.insight_id == first.insight_id
    assert second.version == 3
    assert second.status is InsightStatus.ACKNOWLEDGED  # a re-run does not undo the ack
    assert len(insights.list()) == 1
    rerun = insights.audit(first.insight_id)[-1]
    assert rerun.action == "rerun" and rerun.note == "re-run: escalated from medium"
    assert rerun.changes["priority"] == {"from": "medium", "to": "critical"}
    assert rerun.changes["description"]["to"] == "Still no calls"
    assert rerun.changes["request_id"] == {"from": "req-1", "to": "req-2"}
    stored = insights.get(first.insight_id)
    assert stored.priority == "critical" and stored.request_id == "req-2"


def test_redelivered_request_changes_nothing(insights: InsightRepository) -> None:
    first = _create(insights)
    again = _create(insights)
    assert again == first
    assert len(insights.audit(first.insight_id)) == 1


def test_closed_insight_lets_a_new_one_open(insights: InsightRepository) -> None:
    first = _create(insights)
    insights.transition(first.insight_id, "dismiss", "alice")
    second = _create(insights, "req-2")
    assert second.insight_id != first.insight_id and second.version == 1
    # A late redelivery of the first request does not reopen the dismissed one either.
    assert _create(insights).insight_id == first.insight_id
    assert [i.status for i in insights.list(status="open")] == [InsightStatus.OPEN]


def test_other_subject_or_type_is_a_separate_insight(insights: InsightRepository) -> None:
    a = _create(insights)
    b = _create(insights, insight_type="competitive_threat")
    c = insights.upsert_from_flag(Subject(account_id="ACC-2"), make_flag(), "req-1")
    assert len({a.insight_id, b.insight_id, c.insight_id}) == 3


def test_unique_index_refuses_a_second_active_row(
    store: Database, insights: InsightRepository
) -> None:
    insight = _create(insights)
    with store.transaction() as conn:
        row = dict(conn.execute("SELECT * FROM revops_ai_insights").fetchone())
    row["insight_id"] = "duplicate"
    with pytest.raises(store.integrity_error), store.transaction() as conn:
        marks = ", ".join("?" * len(row))
        conn.execute(
            f"INSERT INTO revops_ai_insights ({', '.join(row)}) VALUES ({marks})",
            tuple(row.values()),
        )
    assert [i.insight_id for i in insights.list()] == [insight.insight_id]


def _upsert_worker(db: str, worker: int, rounds: int, barrier) -> None:
    repo = InsightRepository(Store(Path(db)))
    barrier.wait()
    for n in range(rounds):
        repo.upsert_from_flag(SUBJECT, make_flag(), f"req-{worker}-{n}", "flow", "corr")


def test_concurrent_processes_never_duplicate_an_open_insight(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    # The parent keeps its connection open across the fork on purpose: the store must not
    # let a child close (and checkpoint) a connection it inherited.
    parent = Store(db)
    parent.connect()
    workers, rounds = 4, 15
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(workers)
    procs = [
        ctx.Process(target=_upsert_worker, args=(str(db), w, rounds, barrier))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * workers
    repo = InsightRepository(parent)
    [insight] = repo.list()
    # Every upsert landed on the one insight: one creation plus a re-run per other request.
    assert insight.version == workers * rounds
    audit = repo.audit(insight.insight_id)
    assert len(audit) == workers * rounds
    assert [a.version for a in audit] == list(range(1, workers * rounds + 1))


def test_expiry_listing_and_expire_due(insights: InsightRepository) -> None:
    old = _create(insights)
    working = _create(insights, insight_type="competitive_threat")
    insights.transition(working.insight_id, "start", "alice")
    fresh = _create(insights, insight_type="technical_fit")
    later = old.expires_at + timedelta(seconds=1)
    assert fresh.expires_at is not None and fresh.expires_at > later - timedelta(seconds=5)

    expired_ids = {i.insight_id for i in insights.list(status="expired", now=later)}
    assert old.insight_id in expired_ids and working.insight_id not in expired_ids
    assert old.insight_id not in {i.insight_id for i in insights.list(status="open", now=later)}
    assert insights.get(old.insight_id).effective_status(later) is InsightStatus.EXPIRED
    assert insights.get(old.insight_id).effective_status(old.created_at) is InsightStatus.OPEN

    marked = insights.expire_due(now=later)
    assert old.insight_id in {i.insight_id for i in marked}
    assert working.insight_id not in {i.insight_id for i in marked}  # in progress: kept
    stored = insights.get(old.insight_id)
    assert stored.status is InsightStatus.EXPIRED and stored.expired_at == later
    assert insights.audit(old.insight_id)[-1].action == "expire"
    assert insights.expire_due(now=later) == []  # nothing left to do
    # After expiry a re-run opens a new insight.
    assert _create(insights, "req-9").insight_id != old.insight_id


def test_expiry_depends_on_priority(insights: InsightRepository) -> None:
    critical = _create(insights, severity="critical")
    low = _create(insights, severity="low", insight_type="technical_fit")
    assert critical.expires_at - critical.created_at < low.expires_at - low.created_at


def test_record_action_taken_is_idempotent_per_action(insights: InsightRepository) -> None:
    insight = _create(insights)
    insights.record_action_taken(insight.insight_id, {"action_id": "a1", "status": "failed"})
    insights.record_action_taken(insight.insight_id, {"action_id": "a1", "status": "success"})
    updated = insights.record_action_taken(
        insight.insight_id, {"action_id": "a2", "status": "queued"}
    )
    assert [(a["action_id"], a["status"]) for a in updated.actions_taken] == [
        ("a1", "success"),
        ("a2", "queued"),
    ]
    assert insights.get(insight.insight_id).actions_taken == updated.actions_taken


def test_list_filters(insights: InsightRepository) -> None:
    a = _create(insights)
    b = insights.upsert_from_flag(
        Subject(account_id="ACC-2"),
        make_flag(insight_type="usage_decline", category="consumption_pattern"),
        "req-2",
    )
    assert [i.insight_id for i in insights.list(category="consumption_pattern")] == [b.insight_id]
    assert [i.insight_id for i in insights.list(account_id="ACC-1")] == [a.insight_id]
    assert insights.list(since=utcnow() + timedelta(minutes=1)) == []
    insights.transition(a.insight_id, "ack", "alice")
    assert [i.insight_id for i in insights.list(status="acknowledged")] == [a.insight_id]
    assert [i.insight_id for i in insights.list(status="open")] == [b.insight_id]


def test_redelivered_old_request_does_not_overwrite_newer_findings(
    insights: InsightRepository,
) -> None:
    first = _create(insights, "req-0")
    _create(insights, "req-1", description="older finding")
    newest = _create(insights, "req-2", description="newest finding")
    again = _create(insights, "req-1", description="older finding")
    assert again.insight_id == first.insight_id
    stored = insights.get(first.insight_id)
    assert stored.description == "newest finding" and stored.version == newest.version == 3


async def test_the_service_expires_due_insights_on_its_housekeeping_timer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.common.settings import Settings
    from services.execution_agent import app

    settings = Settings(state_dir=tmp_path, signing_enabled=False)
    runtime = await app.build_runtime(settings, None)
    [expire] = [t for t in runtime.housekeeping if t.name == "expire_insights"]
    repo = InsightRepository(Store(settings.resolved_state_dir / "revops.db"))
    old = _create(repo)
    later = old.expires_at + timedelta(seconds=1)
    monkeypatch.setattr("services.execution_agent.insights.utcnow", lambda: later)
    await expire.run_once()
    assert repo.get(old.insight_id).status is InsightStatus.EXPIRED
