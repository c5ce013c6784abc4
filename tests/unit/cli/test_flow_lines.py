"""The one-line flow outcome that `revops run` and `revops trigger --wait` print."""

from __future__ import annotations

from contracts import AnalysisType, FlowOutput
from contracts.execution import ExecutionSummary
from services.cli.flow_lines import describe_flow
from tests.support.flow_outputs import flow_output


def _flow(scores: dict[str, int]) -> FlowOutput:
    return flow_output(
        analysis_type=AnalysisType.RENEWAL_RISK,
        account_id="001000000000016",
        scores=scores,
        summary=ExecutionSummary(total_actions=2, successful=1, queued=1),
        execution_time_ms=42,
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
