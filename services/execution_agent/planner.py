"""Turns an analysis and what it did to its insights into action jobs, one per delivery, by
routing rules.

Notifications follow the insight, not the analysis: a route sends when an insight event it
listens to happened (`send_on`: created, reopened, escalated by default), stays quiet within
its cooldown unless the insight became more urgent, and a ticket route updates the ticket it
already opened for the subject instead of opening another. The history behind those rules
is the `NotificationLog`; without one (a plain call) every insight counts as new.

Deterministic: an event-driven job's `action_id` (its Idempotency-Key downstream) names the
insight, the event and the insight version it happened at; a per-analysis job's names the
request. A redelivered decision therefore re-plans identical jobs, and a re-run that finds
nothing new plans none.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.actions import ActionJob, Channel
from contracts.analysis import AnalysisResults, Recommendation
from contracts.common import Priority, Severity, utcnow
from services.execution_agent.insights import (
    PRIORITY_RANK,
    Insight,
    InsightChange,
    InsightEvent,
    subject_key,
)
from services.execution_agent.notifications import Notification, NotificationLog, OpenTicket
from services.execution_agent.routing import EVERY_ANALYSIS, Route, RouteScope, RoutingRules

ACTION_NAMESPACE = uuid.UUID("0b6c7a52-3f7e-4d8e-b1a4-1f5f0e2d9a10")
EVENT_NAMESPACE = uuid.UUID("5c0e7d1a-94b2-4f3e-8a61-2d7c9b0e4f18")

__all__ = ["PRIORITY_RANK", "ActionPlanner", "Plan", "action_id_for", "event_action_id"]


def action_id_for(request_id: str, based_on: str, destination: str, route: str) -> str:
    """A job the route makes for every analysis (e.g. the CRM write-back): one per request."""
    return str(uuid.uuid5(ACTION_NAMESPACE, f"{request_id}|{based_on}|{destination}|{route}"))


def event_action_id(change: InsightChange, destination: str, route: str) -> str:
    """A job an insight event makes: one per (insight, event, version, route), whichever
    request carried it, so no re-run can send the same event twice."""
    insight = change.insight
    name = f"{insight.insight_id}|{change.event}|v{insight.version}|{destination}|{route}"
    return str(uuid.uuid5(EVENT_NAMESPACE, name))


@dataclass
class Plan:
    """The jobs, and the event-driven ones as the notification log records them."""

    jobs: list[ActionJob] = field(default_factory=list)
    sent: list[Notification] = field(default_factory=list)


# The order in which an analysis-scope route picks the insight it speaks for.
def _urgency_order(change: InsightChange) -> tuple[int, str, str]:
    return (PRIORITY_RANK[change.insight.priority], change.insight.type, change.insight.insight_id)


def top_priority(priorities: Sequence[str], default: Priority = Priority.MEDIUM) -> Priority:
    return Priority(min(priorities, key=PRIORITY_RANK.__getitem__)) if priorities else default


class ActionPlanner:
    def __init__(self, routing: RoutingRules, history: NotificationLog | None = None) -> None:
        self.routing = routing
        self.history = history

    def plan(
        self,
        analysis: AnalysisResults,
        insights: Sequence[Insight | InsightChange],
        as_of: datetime | None = None,
    ) -> list[ActionJob]:
        """The jobs of `make_plan` (a bare Insight counts as just created)."""
        return self.make_plan(analysis, insights, as_of).jobs

    def make_plan(
        self,
        analysis: AnalysisResults,
        insights: Sequence[Insight | InsightChange],
        as_of: datetime | None = None,
    ) -> Plan:
        """Jobs ordered by priority, then by plan order; `sequence` is that position.

        `as_of` is the time shown in messages and the clock of cooldowns; pass the decision's
        envelope timestamp so a re-plan stays identical (default: the newest insight's
        `updated_at`).
        """
        changes = sorted(
            (
                c if isinstance(c, InsightChange) else InsightChange(c, InsightEvent.CREATED)
                for c in insights
            ),
            key=_urgency_order,
        )
        when = as_of or max((c.insight.updated_at for c in changes), default=None)
        base = self._base_context(analysis, when)
        plan = Plan()
        for change in changes:
            for route in self.routing.routes:
                if route.scope is RouteScope.INSIGHT and route.matches(
                    analysis.analysis_type, change.insight.category, change.insight.priority
                ):
                    self._insight_job(plan, route, analysis, change, base, when)
        for route in self.routing.routes:
            if route.scope is RouteScope.ANALYSIS:
                self._analysis_job(plan, route, analysis, changes, base, when)
        plan.jobs.sort(key=lambda j: PRIORITY_RANK[j.priority])  # stable within a rank
        plan.jobs = [job.model_copy(update={"sequence": n}) for n, job in enumerate(plan.jobs)]
        return plan

    # -- the policy -----------------------------------------------------------------------

    def _should_send(
        self, route: Route, subject: str, change: InsightChange, when: datetime | None
    ) -> bool:
        if not route.sends_on(change.event):
            return False
        if self.history is None:
            return True
        return not self.history.cooling_down(
            route.name,
            subject,
            change.insight.type,
            change.insight.priority,
            when or utcnow(),
            route.cooldown,
        )

    def _open_ticket(self, route: Route, subject: str) -> OpenTicket | None:
        if route.channel is not Channel.TICKET or route.update_template is None:
            return None
        return self.history.open_ticket(route.name, subject) if self.history else None

    def _event_job(
        self,
        plan: Plan,
        route: Route,
        analysis: AnalysisResults,
        change: InsightChange,
        context: dict[str, Any],
        when: datetime | None,
        priority: Priority | None = None,
    ) -> None:
        """One job for an insight event (insight-scope, or an analysis-scope route speaking
        for `change`'s insight, at the analysis' top `priority`), as a ticket update when the
        route's ticket is open. Its result is recorded on that insight."""
        subject = subject_key(analysis.subject.account_id, analysis.subject.opportunity_id)
        if not self._should_send(route, subject, change, when):
            return
        action_id = event_action_id(change, route.destination, route.name)
        ticket = self._open_ticket(route, subject)
        context = {
            **context,
            "insight_event": change.event.value,
            "event_note": _event_note(change),
        }
        insight = change.insight
        job = self._job(
            route, analysis, insight.insight_id, priority or insight.priority, context, insight
        ).model_copy(update={"action_id": action_id})
        if ticket is not None:
            job = job.model_copy(
                update={
                    "template": route.update_template,
                    "updates_ticket": ticket.opened_by,
                    "ticket_id": ticket.ticket_id,
                }
            )
        plan.jobs.append(job)
        plan.sent.append(
            Notification(
                action_id=action_id,
                route=route.name,
                subject_key=subject,
                insight_id=change.insight.insight_id,
                insight_type=change.insight.type,
                event=change.event.value,
                priority=change.insight.priority,
                request_id=analysis.request_id,
                sent_at=when or utcnow(),
                ticket_of=(
                    (ticket.opened_by if ticket is not None else action_id)
                    if route.channel is Channel.TICKET
                    else None
                ),
            )
        )

    # -- one job per insight --------------------------------------------------------------

    def _insight_job(
        self,
        plan: Plan,
        route: Route,
        analysis: AnalysisResults,
        change: InsightChange,
        base: dict[str, Any],
        when: datetime | None,
    ) -> None:
        insight = change.insight
        context = {**base, **self._route_context(route, analysis), **insight_context(insight)}
        if route.send_on == EVERY_ANALYSIS:
            plan.jobs.append(
                self._job(route, analysis, insight.insight_id, insight.priority, context, insight)
            )
            return
        self._event_job(plan, route, analysis, change, context, when)

    # -- one job per analysis -------------------------------------------------------------

    def _analysis_job(
        self,
        plan: Plan,
        route: Route,
        analysis: AnalysisResults,
        changes: Sequence[InsightChange],
        base: dict[str, Any],
        when: datetime | None,
    ) -> None:
        if route.analysis_types and analysis.analysis_type not in route.analysis_types:
            return
        qualifying = [
            c
            for c in changes
            if route.matches(analysis.analysis_type, c.insight.category, c.insight.priority)
        ]
        if route.severities and not qualifying:
            return
        insights = [c.insight for c in qualifying]
        lead = insights[0] if insights else None
        recommendations = sorted(
            analysis.recommendations, key=lambda r: (PRIORITY_RANK[r.priority], r.id)
        )
        priority = top_priority([i.priority for i in insights])
        context: dict[str, Any] = {
            **base,
            **self._route_context(route, analysis),
            "insights": [insight_context(i) for i in insights],
            "recommendations": [recommendation_context(r) for r in recommendations],
            "recommended_actions": [r.description for r in recommendations],
            "risk_level": self._risk_level(route, analysis, insights),
            # One ticket / CRM update per analysis: it speaks for the analysis as a whole.
            "alert_type": (lead.type if lead is not None else analysis.analysis_type.value),
            "pattern": (lead.type if lead is not None else analysis.analysis_type.value),
            "urgency": priority.value,
            "details": analysis.summary or (lead.description if lead is not None else ""),
            "score": analysis.analysis_results.scores.get(route.score_key or "", 0),
            "next_step": recommendations[0].description if recommendations else "",
        }
        if route.score_key is not None:
            context["update"] = {
                "opportunity_id": analysis.subject.opportunity_id,
                "account_id": analysis.subject.account_id,
                "deal_score": analysis.analysis_results.scores.get(route.score_key),
                "risk_level": context["risk_level"],
                "next_step": recommendations[0].description if recommendations else None,
            }
        if route.send_on == EVERY_ANALYSIS:
            based_on = (
                lead.insight_id
                if lead is not None and route.severities
                else (
                    recommendations[0].id if recommendations else f"{analysis.analysis_type}:scores"
                )
            )
            plan.jobs.append(self._job(route, analysis, based_on, priority, context, lead))
            return
        # The most urgent insight with an event the route listens to speaks for the job.
        news = [c for c in qualifying if route.sends_on(c.event)]
        if news:
            self._event_job(plan, route, analysis, news[0], context, when, priority)

    @staticmethod
    def _risk_level(route: Route, analysis: AnalysisResults, insights: Sequence[Insight]) -> str:
        detail = analysis.analysis_results.score_details.get(route.score_key or "")
        if detail is not None:
            return detail.band
        return top_priority([i.priority for i in insights], Priority.LOW).value

    # -- shared ---------------------------------------------------------------------------

    def _job(
        self,
        route: Route,
        analysis: AnalysisResults,
        based_on: str,
        priority: Priority,
        context: dict[str, Any],
        insight: Insight | None,
    ) -> ActionJob:
        mode = route.delivery_mode or self.routing.delivery_modes[Severity(priority.value)]
        return ActionJob(
            action_id=action_id_for(analysis.request_id, based_on, route.destination, route.name),
            request_id=analysis.request_id,
            based_on=based_on,
            type=route.type,
            channel=route.channel,
            destination=route.destination,
            template=route.template,
            delivery_mode=mode,
            priority=priority,
            account_id=analysis.subject.account_id,
            opportunity_id=analysis.subject.opportunity_id,
            insight_id=insight.insight_id if insight is not None else None,
            context={**context, "delivery_mode": mode.value},
        )

    def _route_context(self, route: Route, analysis: AnalysisResults) -> dict[str, Any]:
        team = self.routing.team_for(analysis.analysis_type)
        return {
            "route": route.name,
            "team": route.team or (team.team if team else None),
            "recipients": list(route.recipients),
            "owner_role": team.owner_role if team else None,
            "assignees": list(team.assignees) if team else [],
        }

    @staticmethod
    def _base_context(analysis: AnalysisResults, when: datetime | None) -> dict[str, Any]:
        subject = analysis.subject
        return {
            "request_id": analysis.request_id,
            "analysis_type": analysis.analysis_type.value,
            "account_id": subject.account_id,
            "opportunity_id": subject.opportunity_id,
            # What the alert templates print: names when the dataset had them, else ids.
            "customer": subject.account_name or subject.account_id,
            "deal_name": subject.opportunity_name or subject.opportunity_id,
            "scores": dict(analysis.analysis_results.scores),
            "score_bands": {
                name: detail.band
                for name, detail in analysis.analysis_results.score_details.items()
            },
            "summary": analysis.summary,
            "time": when.isoformat() if when else None,
        }


def _event_note(change: InsightChange) -> str:
    """Words for the alert templates: why this insight is being sent now."""
    if change.event is InsightEvent.ESCALATED and change.previous_priority is not None:
        return f"escalated from {change.previous_priority.value}"
    return EVENT_NOTES.get(change.event, "")


EVENT_NOTES = {
    InsightEvent.CREATED: "new",
    InsightEvent.REOPENED: "reopened",
    InsightEvent.ESCALATED: "escalated",
    InsightEvent.UPDATED: "updated",
}


def insight_context(insight: Insight) -> dict[str, Any]:
    """What an alert template shows about one insight (deal and consumption alerts)."""
    return {
        "insight_id": insight.insight_id,
        "alert_type": insight.type,
        "pattern": insight.type,
        "category": insight.category,
        "title": insight.title,
        "risk_level": insight.priority.value,
        "urgency": insight.priority.value,
        "details": insight.description,
        "confidence": insight.confidence,
        "evidence": insight.evidence,
        "recommendations": insight.recommended_actions,
        # Templates print these as bullet lines.
        "recommended_actions": [
            str(r.get("description") or r.get("action") or "") for r in insight.recommended_actions
        ]
        or ["Review the evidence and decide on a next step."],
    }


def recommendation_context(rec: Recommendation) -> dict[str, Any]:
    return rec.model_dump(
        mode="json", include={"id", "priority", "action", "description", "assignee"}
    )
