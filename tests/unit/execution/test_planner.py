"""Action planning by routing rules: determinism, delivery mode by severity, ordering, CRM
write-back and owner tasks, and validation of the rules file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from contracts import ActionJob, AnalysisType
from services.common.settings import get_settings
from services.execution_agent.insights import Insight, InsightRepository
from services.execution_agent.planner import ActionPlanner
from services.execution_agent.routing import RoutingRules
from tests.unit.execution.conftest import make_analysis, make_flag


def _plan(
    insights: InsightRepository, routing: RoutingRules, analysis
) -> tuple[list[ActionJob], list[Insight]]:
    upserted = [
        insights.upsert_from_flag(
            analysis.subject,
            flag,
            analysis.request_id,
            recommended_actions=[r for r in analysis.recommendations if flag.code in r.based_on],
        )
        for flag in analysis.analysis_results.flags
    ]
    return ActionPlanner(routing).plan(analysis, upserted), upserted


DEAL_FLAGS = [
    make_flag("medium", "competitive_threat"),
    make_flag("critical", "missing_data"),
    make_flag("high", "technical_fit"),
    make_flag("low", "data_quality"),
]


def test_replanning_yields_identical_jobs(insights: InsightRepository, routing) -> None:
    analysis = make_analysis(flags=DEAL_FLAGS)
    first, upserted = _plan(insights, routing, analysis)
    again, _ = _plan(insights, routing, analysis)  # redelivered decision
    assert first == again
    shuffled = ActionPlanner(routing).plan(analysis, list(reversed(upserted)))
    assert shuffled == first
    assert len({j.action_id for j in first}) == len(first)


def test_email_delivery_mode_follows_severity(insights: InsightRepository, routing) -> None:
    jobs, upserted = _plan(insights, routing, make_analysis(flags=DEAL_FLAGS))
    by_type = {i.insight_id: i.type for i in upserted}
    modes = {by_type[j.based_on]: j.delivery_mode for j in jobs if j.channel == "email"}
    assert modes == {
        "missing_data": "immediate",
        "technical_fit": "daily_digest",
        "competitive_threat": "weekly_summary",
        "data_quality": "weekly_summary",
    }


def test_jobs_ordered_by_priority_then_sequence(insights: InsightRepository, routing) -> None:
    jobs, _ = _plan(insights, routing, make_analysis(flags=DEAL_FLAGS))
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    assert [j.sequence for j in jobs] == list(range(len(jobs)))
    assert [rank[j.priority] for j in jobs] == sorted(rank[j.priority] for j in jobs)
    assert jobs[0].priority == "critical" and jobs[-1].priority == "low"


def test_deal_analysis_writes_back_to_crm_and_opens_owner_task(
    insights: InsightRepository, routing
) -> None:
    jobs, upserted = _plan(insights, routing, make_analysis(flags=DEAL_FLAGS))
    [crm] = [j for j in jobs if j.channel == "crm"]
    assert crm.template == "opportunity_update" and crm.destination == "crm_salesforce"
    assert crm.type == "data_update" and crm.delivery_mode == "immediate"
    update = crm.context["update"]
    assert update["deal_score"] == 58 and update["risk_level"] == "at_risk"
    assert update["opportunity_id"] == "OPP-1"
    assert update["next_step"] == "Fix missing_data_flag"  # the critical recommendation first
    [task] = [j for j in jobs if j.channel == "ticket"]
    assert task.template == "deal_alert" and task.destination == "ticket_jira"
    assert task.context["owner_role"] == "account_executive"
    assert "sales_engineer" in task.context["assignees"]
    # Only high and critical insights make the task.
    assert {i["alert_type"] for i in task.context["insights"]} == {"missing_data", "technical_fit"}
    critical = next(i for i in upserted if i.type == "missing_data")
    assert task.based_on == critical.insight_id and task.priority == "critical"


def test_slack_deal_alert_context_has_what_the_template_needs(
    insights: InsightRepository, routing
) -> None:
    jobs, _ = _plan(insights, routing, make_analysis(flags=DEAL_FLAGS))
    slack = [j for j in jobs if j.channel == "slack"]
    assert {j.template for j in slack} == {"deal_alert"}
    assert {j.destination for j in slack} == {"slack_revops_alerts"}
    # Low severity does not go to Slack; it waits for the weekly e-mail summary.
    assert "data_quality" not in {j.context["alert_type"] for j in slack}
    context = slack[0].context
    for key in (
        "deal_name",
        "customer",
        "alert_type",
        "risk_level",
        "details",
        "recommended_actions",
    ):
        assert context[key], key
    assert context["scores"]["deal_quality"] == 58 and context["time"]


def test_no_owner_task_without_high_or_critical(insights: InsightRepository, routing) -> None:
    analysis = make_analysis(flags=[make_flag("medium"), make_flag("low", "data_quality")])
    jobs, _ = _plan(insights, routing, analysis)
    assert not [j for j in jobs if j.channel == "ticket"]
    assert [j.channel.value for j in jobs].count("crm") == 1


def test_consumption_routes_to_cs_and_escalates_critical(
    insights: InsightRepository, routing
) -> None:
    flags = [
        make_flag("critical", "usage_decline", "consumption_pattern"),
        make_flag("medium", "feature_adoption", "consumption_pattern"),
    ]
    analysis = make_analysis(
        analysis_type=AnalysisType.CONSUMPTION, flags=flags, opportunity_id=None
    )
    jobs, _ = _plan(insights, routing, analysis)
    slack = {(j.context["alert_type"], j.destination) for j in jobs if j.channel == "slack"}
    assert slack == {
        ("usage_decline", "slack_cs_alerts"),
        ("usage_decline", "slack_revops_alerts"),
        ("feature_adoption", "slack_cs_alerts"),
    }
    assert not [j for j in jobs if j.channel == "crm"]  # no deal to write back to
    [task] = [j for j in jobs if j.channel == "ticket"]
    assert task.context["owner_role"] == "customer_success_manager"
    assert {j.template for j in jobs if j.channel == "slack"} == {"consumption_alert"}


def test_analysis_without_flags_still_updates_crm(insights: InsightRepository, routing) -> None:
    jobs, _ = _plan(insights, routing, make_analysis(flags=[]))
    assert [(j.channel, j.based_on) for j in jobs] == [("crm", "deal_quality:scores")]


def _rules_dict() -> dict:
    return yaml.safe_load(get_settings().routing_file.read_text())


def test_rules_file_refuses_unknown_compensation_route() -> None:
    data = _rules_dict()
    data["compensations"][0]["requires"] = ["no_such_route"]
    with pytest.raises(ValidationError, match="unknown routes"):
        RoutingRules.model_validate(data)


def test_rules_file_needs_a_delivery_mode_per_severity() -> None:
    data = _rules_dict()
    del data["delivery_modes"]["high"]
    with pytest.raises(ValidationError, match="high"):
        RoutingRules.model_validate(data)


def test_rules_file_refuses_typos(tmp_path: Path) -> None:
    data = _rules_dict()
    data["routes"][0]["chanel"] = "slack"
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValidationError, match="chanel"):
        RoutingRules.load(path)
