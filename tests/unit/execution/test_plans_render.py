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
