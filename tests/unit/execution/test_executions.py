"""Executions: idempotent start and results, status transitions, compensations on partial
failure, and the seed's execution-results / flow-output payloads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts import ActionJob, AnalysisType
from services.common.errors import PermanentError
from services.common.ids import flow_id_for
from services.execution_agent.compensations import compensation_planner
from services.execution_agent.completion import (
    build_execution_results,
    build_flow_output,
)
from services.execution_agent.executions import (
    ExecutionConflictError,
    ExecutionRepository,
    ExecutionState,
    ExecutionStatus,
    UnknownActionError,
    is_complete,
)
from services.execution_agent.insights import InsightRepository
from services.execution_agent.planner import ActionPlanner
from services.execution_agent.service import ExecutionAgent
from services.execution_agent.store import Store
from tests.unit.execution.conftest import make_analysis, make_flag, result


@pytest.fixture
def agent(store: Store, routing) -> ExecutionAgent:
    return ExecutionAgent(store, routing)


def _deal_analysis(request_id: str = "req-1"):
    return make_analysis(
        request_id,
        flags=[make_flag("critical", "missing_data"), make_flag("medium", "competitive_threat")],
    )


def _start(store: Store, routing, analysis=None):
    analysis = analysis or _deal_analysis()
    insight_repo = InsightRepository(store)
    insights = [
        insight_repo.upsert_from_flag(analysis.subject, flag, analysis.request_id)
        for flag in analysis.analysis_results.flags
    ]
    jobs = ActionPlanner(routing).plan(analysis, insights)
    repo = ExecutionRepository(store)
    return repo, repo.start(analysis.request_id, "flow-1", analysis, jobs), jobs


def test_start_is_idempotent(store: Store, routing) -> None:
    repo, first, jobs = _start(store, routing)
    again = repo.start("req-1", "flow-1", _deal_analysis(), [])
    assert again == first
    assert first.execution_status is ExecutionStatus.PLANNED
    assert [j.action_id for j in again.state.planned_actions] == [j.action_id for j in jobs]


def test_status_moves_on_with_results_and_is_idempotent(store: Store, routing) -> None:
    analysis = make_analysis(flags=[make_flag("medium")])
    repo, execution, jobs = _start(store, routing, analysis)
    assert len(jobs) >= 2
    first = repo.record_result(result(jobs[0]))
    assert first.execution_status is ExecutionStatus.IN_PROGRESS
    assert first.version == execution.version + 1
    assert repo.record_result(result(jobs[0], "failed")) == first  # redelivery ignored
    for job in jobs[1:]:
        last = repo.record_result(result(job))
    assert last.execution_status is ExecutionStatus.COMPLETE and is_complete(last)
    assert last.state.completed_at is not None
    stored = repo.get("req-1")
    assert stored.version == 1 + len(jobs) and stored.state.results.keys() == {
        j.action_id for j in jobs
    }


def test_stale_execution_version_refused(store: Store, routing) -> None:
    repo, execution, jobs = _start(store, routing)
    repo.record_result(result(jobs[0]))
    with pytest.raises(ExecutionConflictError):
        repo.record_result(result(jobs[1]), expected_version=execution.version)


def test_unknown_action_refused(store: Store, routing) -> None:
    repo, _, jobs = _start(store, routing)
    stray = result(jobs[0]).model_copy(update={"action_id": "not-planned"})
    with pytest.raises(UnknownActionError):
        repo.record_result(stray)


@pytest.mark.parametrize(
    ("failing", "status"),
    [(set(), ExecutionStatus.COMPLETE), ({"slack"}, ExecutionStatus.PARTIAL)],
)
def test_final_status(store: Store, routing, failing: set[str], status: ExecutionStatus) -> None:
    repo, _, jobs = _start(store, routing)
    for job in jobs:
        last = repo.record_result(result(job, "failed" if job.channel in failing else "success"))
    assert last.execution_status is status


def test_all_failed_is_failed(store: Store, routing) -> None:
    repo, _, jobs = _start(store, routing)
    for job in jobs:
        last = repo.record_result(result(job, "failed", "HTTP 500"))
    assert last.execution_status is ExecutionStatus.FAILED
    assert last.state.compensations == []  # the CRM update failed too: nothing stood alone


def test_crm_update_without_owner_task_is_compensated(store: Store, routing) -> None:
    repo, _, jobs = _start(store, routing)
    compensate = compensation_planner(routing)
    crm = next(j for j in jobs if j.channel == "crm")
    ticket = next(j for j in jobs if j.channel == "ticket")
    for job in jobs:
        failed = job is ticket
        last = repo.record_result(
            result(job, "failed" if failed else "success", "jira 503" if failed else None),
            compensate=compensate,
        )
    assert last.execution_status is ExecutionStatus.PARTIAL
    [comp] = last.state.compensations
    assert comp.rule == "crm_update_without_owner_task"
    assert comp.compensates == crm.action_id and comp.failed == [ticket.action_id]
    assert comp.job.template == "opportunity_annotate" and comp.job.based_on == crm.action_id
    assert comp.job.context["compensation"]["failed"][0]["error"] == "jira 503"
    assert not is_complete(last)  # the compensation itself has not run yet
    done = repo.record_result(result(comp.job), compensate=compensate)
    assert is_complete(done) and len(done.state.compensations) == 1
    # Recorded: which succeeded, which failed and why, and the compensation.
    stored = repo.get("req-1")
    assert stored.state.results[ticket.action_id].error == "jira 503"
    assert stored.state.compensations[0].job.action_id == comp.job.action_id


def test_no_compensation_when_companion_succeeded(store: Store, routing) -> None:
    repo, _, jobs = _start(store, routing)
    compensate = compensation_planner(routing)
    for job in jobs:
        status = "failed" if job.channel == "slack" else "success"
        last = repo.record_result(result(job, status), compensate=compensate)
    assert last.state.compensations == [] and is_complete(last)


def test_execution_results_and_flow_output(store: Store, routing) -> None:
    analysis = _deal_analysis()
    repo, _, jobs = _start(store, routing, analysis)
    compensate = compensation_planner(routing)
    outcome = {"slack": "success", "email": "queued", "crm": "success", "ticket": "failed"}
    for job in jobs:
        last = repo.record_result(result(job, outcome[job.channel]), compensate=compensate)
    comp = last.state.compensations[0].job
    last = repo.record_result(result(comp), compensate=compensate)

    execution_results = build_execution_results(last)
    summary = execution_results.summary
    channels = [j.channel for j in jobs]
    assert summary.total_actions == len(jobs) + 1
    assert summary.failed == channels.count("ticket") == 1
    assert summary.queued == channels.count("email")
    assert summary.successful == len(jobs) + 1 - summary.failed - summary.queued
    assert summary.notifications_sent == channels.count("slack")
    assert summary.data_updates == 2  # the CRM update and its compensation
    body = execution_results.execution_results
    assert body.status == "partial"
    assert body.persistent_storage.table == "revops_ai_executions"
    assert body.persistent_storage.record_id == "req-1"
    assert len(body.actions_executed) == len(jobs) + 1
    assert (
        body.actions_executed[-1].based_on == next(j for j in jobs if j.channel == "crm").action_id
    )
    assert {a.target for a in body.actions_executed} == {"slack", "email", "salesforce", "jira"}
    assert "crm_update_without_owner_task" in body.compensations[0]

    started = last.state.completed_at - timedelta(milliseconds=1500)
    flow = build_flow_output(last, analysis, execution_results, started)
    assert flow.status == "partial" and flow.execution_time_ms == 1500
    assert flow.flow_execution_id == flow_id_for("req-1") != flow_id_for("req-2")
    assert flow.results_location.query == (
        "SELECT * FROM revops_ai_executions WHERE request_id = 'req-1'"
    )
    assert flow.scores["deal_quality"] == 58 and flow.subject.opportunity_id == "OPP-1"
    assert f"{len(jobs) + 1} actions" in flow.summary and "1 failed" in flow.summary
    assert build_flow_output(last, analysis, build_execution_results(last), started) == flow


def test_agent_runs_a_flow_end_to_end(agent: ExecutionAgent) -> None:
    analysis = _deal_analysis()
    outcome = agent.handle_decision(analysis, "flow-1", "corr-1")
    assert outcome.flow_output is None and len(outcome.insights) == 2
    assert outcome.execution.state.insight_ids == [i.insight_id for i in outcome.insights]
    # A redelivered decision re-publishes the same, still pending, jobs.
    assert agent.handle_decision(analysis, "flow-1", "corr-1").jobs == outcome.jobs
    flows = []
    compensating: list[ActionJob] = []
    for job in outcome.jobs:
        handled = agent.handle_action_result(
            result(job, "failed" if job.channel == "ticket" else "success")
        )
        compensating += handled.jobs
        flows.append(handled.flow_output)
    assert flows == [None] * len(outcome.jobs)
    [comp] = compensating
    final = agent.handle_action_result(result(comp))
    assert final.flow_output is not None and final.flow_output.status == "partial"
    assert final.flow_output.insight_ids == outcome.execution.state.insight_ids
    # Until marked published, a redelivered result yields the same flow output again.
    assert agent.handle_action_result(result(comp)).flow_output == final.flow_output
    agent.flow_published("req-1")
    assert agent.handle_action_result(result(comp)).flow_output is None
    # Delivery results are kept on the insight they carried out.
    critical = next(i for i in outcome.insights if i.type == "missing_data")
    taken = agent.insights.get(critical.insight_id).actions_taken
    assert {a["channel"] for a in taken} >= {"slack", "email"}


def test_agent_completes_at_once_when_nothing_to_do(agent: ExecutionAgent) -> None:
    analysis = make_analysis(analysis_type=AnalysisType.CONSUMPTION, opportunity_id=None)
    outcome = agent.handle_decision(analysis)
    assert outcome.jobs == []
    assert outcome.flow_output is not None and outcome.flow_output.status == "success"
    assert outcome.flow_output.execution.summary.total_actions == 0
    health = agent.health.get("ACC-1")
    assert health is not None and health.score == 41


def test_agent_refuses_results_it_never_planned(agent: ExecutionAgent) -> None:
    outcome = agent.handle_decision(_deal_analysis())
    stray = result(outcome.jobs[0]).model_copy(update={"request_id": "req-unknown"})
    with pytest.raises(PermanentError):
        agent.handle_action_result(stray)


class _Parses:
    """Counts how often an execution's state is parsed from its JSON."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        parse = ExecutionState.model_validate_json

        def counting(text: str) -> ExecutionState:
            self.count += 1
            return parse(text)

        monkeypatch.setattr(ExecutionState, "model_validate_json", counting)


def test_a_state_this_process_wrote_is_not_parsed_again(
    store: Store, routing, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = _Parses(monkeypatch)
    repo, _, jobs = _start(store, routing, make_analysis(flags=[make_flag("medium")]))
    for job in jobs:  # each result reads the row its predecessor wrote
        last = repo.record_result(result(job))
    assert parses.count == 0
    assert repo.get("req-1") == last and last.execution_status is ExecutionStatus.COMPLETE
    # what a fresh reader (another process) parses is the same execution
    assert ExecutionRepository(store).get("req-1") == last and parses.count == 1


def test_another_writer_s_change_is_read_not_the_state_remembered(store: Store, routing) -> None:
    """Two replicas on one store: each remembers what it wrote; a row the other changed
    since is parsed again, so no result is lost and no version conflict is made up."""
    mine, _, jobs = _start(store, routing, make_analysis(flags=[make_flag("medium")]))
    other = ExecutionRepository(store)
    assert len(jobs) >= 3
    mine.record_result(result(jobs[0]))
    other.record_result(result(jobs[1]))
    for job in jobs[2:]:
        last = mine.record_result(result(job))
    assert last.state.results.keys() == {j.action_id for j in jobs}
    assert last.version == 1 + len(jobs) and last.execution_status is ExecutionStatus.COMPLETE
    assert other.get("req-1") == last


def test_a_write_rolled_back_is_not_what_is_read_next(store: Store, routing) -> None:
    repo, _, jobs = _start(store, routing)
    with pytest.raises(RuntimeError), store.transaction():
        repo.record_result(result(jobs[0]))  # remembered as written ...
        raise RuntimeError("the batch failed")  # ... and undone
    again = repo.get("req-1")
    assert again.version == 1 and again.state.results == {}
    assert repo.record_result(result(jobs[0])).version == 2
