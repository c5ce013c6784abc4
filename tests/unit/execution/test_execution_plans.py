"""A flow's planned jobs are stored once, beside its execution row (revops_ai_execution_plans),
not inside the state that every delivery result rewrites; executions stored before keep their
plans through the migration. Both engines."""

from __future__ import annotations

import shutil
from pathlib import Path

from services.common.stores.database import Database
from services.common.stores.migrations import current_version, migrate
from services.common.stores.open import open_database
from services.execution_agent.executions import (
    PLANS_TABLE,
    ExecutionRepository,
    ExecutionState,
    stored_state,
)
from services.execution_agent.insights import InsightRepository
from services.execution_agent.planner import ActionPlanner
from services.execution_agent.store import COMPONENT, MIGRATIONS, open_store, to_db_time
from tests.unit.execution.conftest import make_analysis, make_flag, result


def _plan(store: Database, routing, request_id: str = "req-1"):
    analysis = make_analysis(request_id, flags=[make_flag("critical"), make_flag("medium")])
    insights = InsightRepository(store)
    found = [
        insights.upsert_from_flag(analysis.subject, flag, analysis.request_id)
        for flag in analysis.analysis_results.flags
    ]
    return analysis, ActionPlanner(routing).plan(analysis, found)


def _stored(store: Database, request_id: str) -> tuple[str, str | None]:
    with store.reader() as conn:
        state = conn.execute(
            "SELECT state_data FROM revops_ai_executions WHERE request_id = ?", (request_id,)
        ).fetchone()[0]
        plan = conn.execute(
            f"SELECT planned_actions FROM {PLANS_TABLE} WHERE request_id = ?", (request_id,)
        ).fetchone()
    return state, None if plan is None else plan[0]


def test_results_rewrite_the_state_without_the_plan(store: Database, routing) -> None:
    analysis, jobs = _plan(store, routing)
    assert len(jobs) >= 2
    repo = ExecutionRepository(store)
    repo.start("req-1", "flow-1", analysis, jobs)
    state_data, plan = _stored(store, "req-1")
    assert "planned_actions" not in state_data
    assert plan is not None and all(job.action_id in plan for job in jobs)
    repo.record_result(result(jobs[0]))
    after, plan_after = _stored(store, "req-1")
    assert jobs[0].action_id in after and jobs[1].template not in after
    assert plan_after == plan  # written once
    # Another process (nothing kept) reads the whole state back, plan and results.
    fresh = ExecutionRepository(store).get("req-1")
    assert fresh.state.planned_actions == jobs
    assert list(fresh.state.results) == [jobs[0].action_id]
    assert stored_state(after, plan_after) == fresh.state
    again = ExecutionRepository(store)
    for job in jobs[1:]:
        finished = again.record_result(result(job))
    assert finished.state.primaries_done()


def test_a_flow_with_nothing_planned_reads_back_empty(store: Database, routing) -> None:
    analysis, _ = _plan(store, routing)
    ExecutionRepository(store).start("req-2", "flow-2", analysis, [])
    again = ExecutionRepository(store).get("req-2")
    assert again.state.planned_actions == [] and again.state.is_complete()


def test_executions_stored_before_keep_their_plans_through_the_migration(
    tmp_path: Path, database_url: str, routing
) -> None:
    engine = "postgresql" if database_url else "sqlite"
    before = tmp_path / "migrations"
    (before / engine).mkdir(parents=True)
    for path in sorted((MIGRATIONS / engine).glob("000[123]_*.sql")):
        shutil.copy(path, before / engine / path.name)
    old = open_database(tmp_path / "revops.db", COMPONENT, before, database_url)
    assert current_version(old, COMPONENT) == 3
    analysis, jobs = _plan(old, routing, "req-old")
    state = ExecutionState(
        analysis_type=analysis.analysis_type,
        subject=analysis.subject,
        planned_actions=jobs,
        results={jobs[0].action_id: result(jobs[0])},
    )
    now = to_db_time(state.started_at)
    with old.transaction() as conn:  # as the agent wrote it before: the plan inside
        conn.execute(
            "INSERT INTO revops_ai_executions VALUES (?, ?, 2, ?, ?, ?, 'in_progress')",
            ("req-old", "flow-old", now, now, state.model_dump_json()),
        )
    old.close()

    store = open_store(tmp_path / "revops.db", url=database_url)
    assert current_version(store, COMPONENT) >= 4
    migrate(store, COMPONENT, MIGRATIONS)  # applied once: nothing moves twice
    state_data, plan = _stored(store, "req-old")
    assert "planned_actions" not in state_data and plan is not None
    repo = ExecutionRepository(store)
    migrated = repo.get("req-old")
    assert migrated.state == state
    for job in jobs[1:]:
        done = repo.record_result(result(job))
    assert done.state.primaries_done()
    assert '"flow_published_at":null' in state_data or engine == "postgresql"
    published = repo.mark_flow_published("req-old")
    assert published.state.flow_published_at is not None
    assert published.state.planned_actions == jobs
