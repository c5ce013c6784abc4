"""The planner and the webhook processor agree: every job planned for deal and consumption
analyses (and every compensation) renders with the real templates and destinations."""

from __future__ import annotations

import pytest

from contracts import AnalysisType
from services.common.settings import PROJECT_ROOT
from services.execution_agent.insights import InsightRepository
from services.execution_agent.planner import ActionPlanner
from services.execution_agent.routing import RoutingRules
from services.webhook_processor.channels import Message, build, message_id
from services.webhook_processor.config import load_config
from services.webhook_processor.templates import TemplateRenderer
from tests.unit.execution.conftest import make_analysis, make_flag

DEMO = PROJECT_ROOT / "services" / "webhook_processor" / "webhooks.demo.yaml"


@pytest.mark.parametrize(
    ("analysis_type", "category", "types"),
    [
        (AnalysisType.DEAL_QUALITY, "deal_quality", ["missing_data", "competitive_threat"]),
        (AnalysisType.CONSUMPTION, "churn_risk", ["engagement_drop", "usage_anomaly"]),
    ],
)
def test_every_planned_job_renders(
    insights: InsightRepository, routing, analysis_type, category, types
):
    flags = [
        make_flag(sev, t, category) for sev, t in zip(["critical", "high"], types, strict=True)
    ]
    analysis = make_analysis(analysis_type=analysis_type, flags=flags)
    upserted = [
        insights.upsert_from_flag(analysis.subject, f, analysis.request_id, None, None, [], {})
        for f in flags
    ]
    jobs = ActionPlanner(routing).plan(analysis, upserted)
    config = load_config(DEMO)
    renderer = TemplateRenderer()
    compensation = RoutingRules.load().compensations[0].action
    assert {j.channel for j in jobs} >= {"slack", "email", "ticket"}
    for job in jobs:
        spec = build(
            config.destinations[job.destination], Message.for_job(job, job.destination), renderer
        )
        # rendered, and keyed for idempotency by the action id (header or Message-ID)
        email = getattr(spec, "message", None)
        rendered = repr(spec) + (email.as_string() if email is not None else "")
        assert job.action_id in rendered or message_id(job.action_id) in rendered, job.template
    annotate = jobs[0].model_copy(
        update={"template": compensation.template, "destination": compensation.destination}
    )
    if annotate.opportunity_id:
        build(
            config.destinations[annotate.destination],
            Message.for_job(annotate, annotate.destination),
            renderer,
        )


def _render(job, config, renderer) -> str:
    spec = build(
        config.destinations[job.destination], Message.for_job(job, job.destination), renderer
    )
    email = getattr(spec, "message", None)
    return repr(spec) + (email.as_string() if email is not None else "")


def test_alerts_tickets_and_updates_name_the_account_and_the_deal(store, routing) -> None:
    """Names travel from the analysis' subject into every alert, ticket and ticket update
    (not ids alone), and the update templates render with the real destinations."""
    from datetime import UTC, datetime, timedelta

    from services.execution_agent.service import ExecutionAgent
    from tests.unit.execution.conftest import result

    agent = ExecutionAgent(store, routing)
    config, renderer = load_config(DEMO), TemplateRenderer()
    named = make_analysis(flags=[make_flag("high", "missing_data")]).subject.model_copy(
        update={"account_name": "Ironcore Analytics", "opportunity_name": "Ironcore - Expansion"}
    )
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    rendered, flows = [], []
    for run, severity in enumerate(["high", "critical"]):
        analysis = make_analysis(f"req-{run}", flags=[make_flag(severity, "missing_data")])
        analysis = analysis.model_copy(update={"subject": named})
        outcome = agent.handle_decision(analysis, "flow", "corr", at + timedelta(minutes=run))
        for job in outcome.jobs:
            text = _render(job, config, renderer)
            rendered.append((job, text))
            opened = {"ticket_id": job.action_id} if job.channel == "ticket" else None
            done = agent.handle_action_result(result(job, response=opened))
            flows += [done.flow_output] if done.flow_output else []
    notifications = [(j, t) for j, t in rendered if j.channel != "crm"]
    assert {j.channel for j, _ in notifications} == {"slack", "email", "ticket"}
    for job, text in notifications:
        assert "Ironcore Analytics" in text and "Ironcore - Expansion" in text, job.template
    [update] = [j for j, _ in rendered if j.updates_ticket]
    assert update.ticket_id and update.template == "deal_alert_update"
    assert [f.subject.account_name for f in flows] == ["Ironcore Analytics"] * 2
    assert {f.subject.opportunity_name for f in flows} == {"Ironcore - Expansion"}
