"""Flow completion: the seed's execution results (stage 4) and flow output (stage 5).

Pure functions of the recorded execution, so the same execution always yields the same
payloads (a redelivered last result re-publishes an identical flow output).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from contracts.actions import ActionJob, ActionResult, ActionStatus, ActionType
from contracts.analysis import AnalysisResults
from contracts.analysis_types import ANALYSIS_TYPES
from contracts.common import utcnow
from contracts.execution import (
    ActionExecuted,
    ExecutionBody,
    ExecutionResults,
    ExecutionSummary,
    FlowOutput,
    PersistentStorage,
    ResultsLocation,
)
from services.common.ids import flow_id_for
from services.execution_agent.executions import (
    EXECUTIONS_TABLE,
    Execution,
    ExecutionStatus,
    derive_status,
)

FLOW_STATUS = {
    ExecutionStatus.COMPLETE: "success",
    ExecutionStatus.PARTIAL: "partial",
    ExecutionStatus.FAILED: "failed",
}


def build_execution_results(
    execution: Execution,
    results: Sequence[ActionResult] | None = None,
    database: str = "sqlite",
) -> ExecutionResults:
    """Seed stage 4. `results` default to the ones recorded on the execution."""
    by_id = (
        {r.action_id: r for r in results} if results is not None else dict(execution.state.results)
    )
    jobs = sorted(execution.state.all_jobs(), key=lambda j: j.sequence)
    done = [(job, by_id[job.action_id]) for job in jobs if job.action_id in by_id]
    state = execution.state.model_copy(update={"results": by_id})
    status = derive_status(state)
    return ExecutionResults(
        request_id=execution.request_id,
        execution_results=ExecutionBody(
            status=status.value,
            timestamp=state.completed_at or execution.updated_at,
            actions_executed=[_executed(job, result) for job, result in done],
            persistent_storage=PersistentStorage(
                database=database, table=EXECUTIONS_TABLE, record_id=execution.request_id
            ),
            compensations=[
                f"{c.rule}: compensated {c.compensates} after failure of "
                f"{', '.join(c.failed)} with {c.job.action_id} "
                f"({_status_text(by_id.get(c.job.action_id))})"
                for c in state.compensations
            ],
        ),
        summary=summarise(jobs, [result for _, result in done]),
    )


def summarise(jobs: Sequence[ActionJob], results: Sequence[ActionResult]) -> ExecutionSummary:
    def count(status: ActionStatus, kind: ActionType | None = None) -> int:
        return sum(r.status is status and (kind is None or r.type is kind) for r in results)

    return ExecutionSummary(
        total_actions=len(jobs),
        successful=count(ActionStatus.SUCCESS),
        failed=count(ActionStatus.FAILED),
        queued=count(ActionStatus.QUEUED),
        notifications_sent=count(ActionStatus.SUCCESS, ActionType.NOTIFICATION),
        data_updates=count(ActionStatus.SUCCESS, ActionType.DATA_UPDATE),
    )


def build_flow_output(
    execution: Execution,
    analysis: AnalysisResults,
    execution_results: ExecutionResults,
    started_at: datetime,
    finished_at: datetime | None = None,
) -> FlowOutput:
    """Seed stage 5: status, elapsed time, where the record lives, and a one-line summary."""
    finished = finished_at or execution.state.completed_at or utcnow()
    body = execution_results.execution_results
    summary = execution_results.summary
    status = FLOW_STATUS.get(ExecutionStatus(body.status), "partial")
    title = ANALYSIS_TYPES[analysis.analysis_type].title
    text = f"{title} completed with {summary.total_actions} actions executed"
    details = [
        f"{summary.successful} successful",
        f"{summary.queued} queued",
        f"{summary.failed} failed",
    ]
    if body.compensations:
        details.append(f"{len(body.compensations)} compensated")
    quoted = execution.request_id.replace("'", "''")
    return FlowOutput(
        flow_execution_id=flow_id_for(execution.request_id),
        request_id=execution.request_id,
        status=status,
        execution_time_ms=max(0, round((finished - started_at).total_seconds() * 1000)),
        summary=f"{text} ({', '.join(details)})",
        results_location=ResultsLocation(
            database=body.persistent_storage.database,
            table=EXECUTIONS_TABLE,
            query=f"SELECT * FROM {EXECUTIONS_TABLE} WHERE request_id = '{quoted}'",
        ),
        analysis_type=analysis.analysis_type,
        subject=analysis.subject,
        scores=dict(analysis.analysis_results.scores),
        insight_ids=list(execution.state.insight_ids),
        execution=execution_results,
    )


def _executed(job: ActionJob, result: ActionResult) -> ActionExecuted:
    return ActionExecuted(
        id=job.action_id,
        based_on=job.based_on,
        type=job.type.value,
        target=result.target,
        status=result.status.value,
        response=result.response,
        error=result.error,
    )


def _status_text(result: ActionResult | None) -> str:
    return result.status.value if result is not None else "pending"
