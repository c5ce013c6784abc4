"""The one-line flow outcome that `revops run` and `revops trigger --wait` print."""

from __future__ import annotations

from contracts import AnalysisType, ExecutionResults, FlowOutput, Subject
from contracts.execution import ExecutionBody, ExecutionSummary, PersistentStorage, ResultsLocation
from services.cli.flow_lines import describe_flow


def _flow(scores: dict[str, int]) -> FlowOutput:
    return FlowOutput(
        flow_execution_id="flow-1",
        request_id="req-1",
        status="success",
        execution_time_ms=42,
        summary="done",
        results_location=ResultsLocation(database="x", table="t", query="q"),
        analysis_type=AnalysisType.RENEWAL_RISK,
        subject=Subject(account_id="001000000000016"),
        scores=scores,
        execution=ExecutionResults(
            request_id="req-1",
            execution_results=ExecutionBody(
                status="complete",
                persistent_storage=PersistentStorage(database="x", table="t", record_id="r"),
            ),
            summary=ExecutionSummary(total_actions=2, successful=1, queued=1),
        ),
    )


def test_a_flow_line_lists_the_scores_in_name_order() -> None:
    line = describe_flow(_flow({"renewal_risk": 54, "customer_health": 61}))
    assert line == (
        "[success] renewal_risk 001000000000016: customer_health=61, renewal_risk=54 | "
        "actions 2 (ok 1, queued 1, failed 0) | 42 ms"
    )


def test_a_flow_without_scores_says_so() -> None:
    line = describe_flow(_flow({}))
    assert "001000000000016: no scores | actions 2" in line
