"""Notifications follow the insight, not the analysis: the same findings analysed again and
again alert once and open one ticket; an escalation or a reopened insight alerts again; the
ticket is updated, not opened anew; a route's cooldown (routing.yaml) keeps it quiet; the
Idempotency-Key names the insight event, whichever request carried it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from contracts import ActionJob, AnalysisType
from services.execution_agent.insights import InsightChange, InsightEvent, InsightRepository
from services.execution_agent.planner import ActionPlanner
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import ExecutionAgent
from services.execution_agent.store import Store
from tests.unit.execution.conftest import make_analysis, make_flag, result

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def agent(store: Store, routing: RoutingRules) -> ExecutionAgent:
    return ExecutionAgent(store, routing)


def deliver(agent: ExecutionAgent, jobs: list[ActionJob]) -> None:
    """Every job delivered; tickets answer with their Jira key, as the webhook processor
    reports it."""
    for n, job in enumerate(jobs):
        response = {"ticket_id": f"REV-{n}"} if job.channel == "ticket" else {}
        agent.handle_action_result(result(job, response=response))


def analyse(agent: ExecutionAgent, run: int, at: datetime, *flags) -> list[ActionJob]:
    analysis = make_analysis(f"req-{run}", flags=list(flags))
    jobs = agent.handle_decision(analysis, f"flow-{run}", f"corr-{run}", at).jobs
    deliver(agent, jobs)
    return jobs


def kinds(jobs: list[ActionJob]) -> Counter[str]:
    """route (+ ':update' for a ticket update) -> count."""
    return Counter(f"{j.context['route']}{':update' if j.updates_ticket else ''}" for j in jobs)


def test_the_same_findings_again_send_nothing_new(agent: ExecutionAgent) -> None:
    flag = make_flag("critical", "missing_data")
    first = analyse(agent, 1, T0, flag)
    assert kinds(first) == {
        "slack_deal_alert": 1,
        "email_deal_alert": 1,
        "crm_deal_update": 1,
        "owner_task_deal": 1,
    }
    assert {j.context["insight_event"] for j in first if j.channel != "crm"} == {"created"}
    # Eleven re-runs within 15 minutes: the score is written back each time, nothing else.
    for run in range(2, 13):
        again = analyse(agent, run, T0 + timedelta(minutes=run), flag)
        assert kinds(again) == {"crm_deal_update": 1}, run


def test_escalation_alerts_again_and_updates_the_open_ticket(agent: ExecutionAgent) -> None:
    opened = analyse(agent, 1, T0, make_flag("high", "missing_data"))
    [ticket] = [j for j in opened if j.channel == "ticket"]
    assert ticket.updates_ticket is None
    escalated = analyse(agent, 2, T0 + timedelta(minutes=30), make_flag("critical", "missing_data"))
    assert kinds(escalated) == {
        "slack_deal_alert": 1,  # within its 6 h cooldown, but more urgent than what it sent
        "email_deal_alert": 1,
        "crm_deal_update": 1,
        "owner_task_deal:update": 1,
    }
    [update] = [j for j in escalated if j.channel == "ticket"]
    assert update.updates_ticket == ticket.action_id
    assert update.ticket_id == "REV-3"  # the id the opening delivery reported
    assert update.template == "deal_alert_update" and update.priority == "critical"
    [slack] = [j for j in escalated if j.channel == "slack"]
    assert slack.context["event_note"] == "escalated from high"
    # Back to high and up again: "critical" was sent within the cooldown, so only the ticket
    # (no cooldown) hears of it.
    analyse(agent, 3, T0 + timedelta(hours=1), make_flag("high", "missing_data"))
    again = analyse(agent, 4, T0 + timedelta(hours=2), make_flag("critical", "missing_data"))
    assert kinds(again) == {"crm_deal_update": 1, "owner_task_deal:update": 1}


def test_a_new_insight_on_the_subject_updates_the_ticket_it_has(agent: ExecutionAgent) -> None:
    opened = analyse(agent, 1, T0, make_flag("critical", "missing_data"))
    [ticket] = [j for j in opened if j.channel == "ticket"]
    both = analyse(
        agent,
        2,
        T0 + timedelta(minutes=5),
        make_flag("critical", "missing_data"),
        make_flag("high", "technical_fit"),
    )
    assert kinds(both)["owner_task_deal:update"] == 1 and "owner_task_deal" not in kinds(both)
    [update] = [j for j in both if j.channel == "ticket"]
    assert update.updates_ticket == ticket.action_id
    assert {i["alert_type"] for i in update.context["insights"]} == {
        "missing_data",
        "technical_fit",
    }


def test_a_reopened_insight_alerts_after_the_cooldown_and_opens_a_new_ticket(
    agent: ExecutionAgent,
) -> None:
    flag = make_flag("critical", "missing_data")
    first = analyse(agent, 1, T0, flag)
    insight_id = next(j.insight_id or "" for j in first if j.channel == "slack")
    agent.insights.transition(insight_id, "ack", "alice")
    agent.insights.transition(insight_id, "resolve", "alice")
    soon = analyse(agent, 2, T0 + timedelta(hours=1), flag)
    # Slack stays quiet in its cooldown; the old ticket's insight is closed: a new ticket.
    assert kinds(soon) == {"crm_deal_update": 1, "owner_task_deal": 1}
    [ticket] = [j for j in soon if j.channel == "ticket"]
    assert ticket.context["insight_event"] == "reopened" and ticket.updates_ticket is None
    reopened = agent.insights.get(ticket.insight_id or "")
    agent.insights.transition(reopened.insight_id, "dismiss", "bob")
    later = analyse(agent, 3, T0 + timedelta(days=2), flag)
    assert kinds(later)["slack_deal_alert"] == 1 and kinds(later)["email_deal_alert"] == 1


def test_cooldown_is_configuration(store: Store, routing: RoutingRules) -> None:
    quiet = routing.model_copy(
        update={
            "routes": [
                r.model_copy(update={"cooldown": timedelta(0)})
                if r.name == "slack_deal_alert"
                else r
                for r in routing.routes
            ]
        }
    )
    agent = ExecutionAgent(store, quiet)
    flag = make_flag("critical", "missing_data")
    first = analyse(agent, 1, T0, flag)
    insight_id = next(j.insight_id or "" for j in first if j.channel == "slack")
    agent.insights.transition(insight_id, "dismiss", "alice")
    soon = analyse(agent, 2, T0 + timedelta(hours=1), flag)
    assert kinds(soon)["slack_deal_alert"] == 1  # no cooldown: the reopened insight alerts


def test_cooldown_parses_human_durations() -> None:
    data = RoutingRules.load().model_dump(mode="json")
    data["routes"][0]["cooldown"] = "90m"
    data["routes"][1]["cooldown"] = "1d"
    data["routes"][2]["cooldown"] = 30
    rules = RoutingRules.model_validate(data)
    assert [r.cooldown for r in rules.routes[:3]] == [
        timedelta(minutes=90),
        timedelta(days=1),
        timedelta(seconds=30),
    ]


def test_update_template_only_on_ticket_routes() -> None:
    data = RoutingRules.load().model_dump(mode="json")
    data["routes"][0]["update_template"] = "deal_alert_update"  # a Slack route
    with pytest.raises(ValueError, match="update_template is for ticket routes only"):
        RoutingRules.model_validate(data)


def test_idempotency_key_names_the_insight_event_not_the_request(
    insights: InsightRepository, routing: RoutingRules
) -> None:
    """Even a planner with no memory (a lost notification log, a second replica) cannot
    double-send an event: any request carrying it yields the same action ids."""
    analysis = make_analysis("req-a", flags=[make_flag("critical", "missing_data")])
    change = insights.upsert(analysis.subject, analysis.analysis_results.flags[0], "req-a")
    assert change.event is InsightEvent.CREATED
    planner = ActionPlanner(routing)
    first = planner.plan(analysis, [change], as_of=T0)
    other = analysis.model_copy(update={"request_id": "req-b"})
    second = planner.plan(other, [change], as_of=T0)
    events = [j for j in first if j.context["route"] != "crm_deal_update"]
    assert events and {j.action_id for j in events} <= {j.action_id for j in second}
    crm = {j.action_id for j in first if j.context["route"] == "crm_deal_update"}
    assert not crm & {j.action_id for j in second}  # per analysis: per request


def test_events_of_reruns(insights: InsightRepository) -> None:
    subject = make_analysis().subject

    def run(request: str, severity: str, description: str = "No calls") -> InsightChange:
        flag = make_flag(severity, "missing_data", description=description)
        return insights.upsert(subject, flag, request)

    assert run("r1", "high").event is InsightEvent.CREATED
    assert run("r2", "high").event is InsightEvent.UNCHANGED
    escalated = run("r3", "critical")
    assert escalated.event is InsightEvent.ESCALATED and escalated.previous_priority == "high"
    assert run("r4", "critical", "Still no calls").event is InsightEvent.UPDATED
    assert run("r5", "high", "Still no calls").event is InsightEvent.UPDATED  # lowered
    # A redelivered request reads its event back, so it re-plans the same jobs.
    again = run("r3", "critical")
    assert again.event is InsightEvent.ESCALATED and again.previous_priority == "high"
    insights.transition(escalated.insight.insight_id, "dismiss", "alice")
    assert run("r6", "high").event is InsightEvent.REOPENED
    assert insights.audit(run("r6", "high").insight.insight_id)[0].action == "reopen"


def test_consumption_escalation_reaches_the_critical_channel_once(
    agent: ExecutionAgent,
) -> None:
    def consumption(run: int, severity: str) -> list[ActionJob]:
        analysis = make_analysis(
            f"c-{run}",
            analysis_type=AnalysisType.CONSUMPTION,
            opportunity_id=None,
            flags=[make_flag(severity, "usage_decline", "consumption_pattern")],
        )
        jobs = agent.handle_decision(analysis, "f", "c", T0 + timedelta(minutes=run)).jobs
        deliver(agent, jobs)
        return jobs

    assert "slack_critical_customer_escalation" not in kinds(consumption(1, "high"))
    up = kinds(consumption(2, "critical"))
    assert up["slack_critical_customer_escalation"] == 1 and up["slack_consumption_alert"] == 1
    assert not kinds(consumption(3, "critical"))  # the same again: nothing at all
