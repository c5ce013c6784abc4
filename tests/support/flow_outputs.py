"""A flow output (seed stage 5) for tests that store, index or print one."""

from __future__ import annotations

from contracts import AnalysisType, FlowOutput, Subject
from contracts.execution import (
    ExecutionBody,
    ExecutionResults,
    ExecutionSummary,
    PersistentStorage,
    ResultsLocation,
)


def flow_output(
    request_id: str = "req-1",
    *,
    analysis_type: AnalysisType = AnalysisType.DEAL_QUALITY,
    account_id: str = "ACC-1",
    scores: dict[str, int] | None = None,
    summary: ExecutionSummary | None = None,
    execution_time_ms: int = 5,
) -> FlowOutput:
    """A successful flow of `request_id` whose execution record says `summary`."""
    return FlowOutput(
        flow_execution_id=f"flow-{request_id}",
        request_id=request_id,
        status="success",
        execution_time_ms=execution_time_ms,
        summary="done",
        results_location=ResultsLocation(database="x", table="t", query="q"),
        analysis_type=analysis_type,
        subject=Subject(account_id=account_id),
        scores=scores or {},
        execution=ExecutionResults(
            request_id=request_id,
            execution_results=ExecutionBody(
                status="complete",
                persistent_storage=PersistentStorage(database="x", table="t", record_id="r"),
            ),
            summary=summary or ExecutionSummary(),
        ),
    )
