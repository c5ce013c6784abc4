"""One line per flow outcome, as `revops run` and `revops trigger --wait` print them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module at start: keep it free of pydantic models
    from contracts import FlowOutput
    from services.common.dlq import Rejection


def describe_flow(flow: FlowOutput) -> str:
    subject = flow.subject.opportunity_id or flow.subject.account_id
    # An analysis can end without scores (a renewal review of an account with no agreement to
    # renew): say so rather than print an empty field.
    scores = ", ".join(f"{k}={v}" for k, v in sorted(flow.scores.items())) or "no scores"
    s = flow.execution.summary
    return (
        f"[{flow.status}] {flow.analysis_type.value} {subject}: {scores} | "
        f"actions {s.total_actions} (ok {s.successful}, queued {s.queued}, failed {s.failed}) | "
        f"{flow.execution_time_ms} ms"
    )


def describe_rejection(rejection: Rejection) -> str:
    return f"[rejected] {rejection.request_id}: {rejection.line}"
