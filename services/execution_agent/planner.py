"""Turns an analysis and its insights into action jobs, one per delivery, by routing rules.

Pure and deterministic: the same analysis and insights always give the same jobs with the
same `action_id`s, so a redelivered decision re-publishes identical jobs and the webhook
processor's Idempotency-Key makes the second copy a no-op.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from contracts.actions import ActionJob
from contracts.analysis import AnalysisResults, Recommendation
from contracts.common import Priority, Severity
from services.execution_agent.insights import Insight
from services.execution_agent.routing import Route, RouteScope, RoutingRules

ACTION_NAMESPACE = uuid.UUID("0b6c7a52-3f7e-4d8e-b1a4-1f5f0e2d9a10")
PRIORITY_RANK: dict[str, int] = {p.value: rank for rank, p in enumerate(Priority)}


def action_id_for(request_id: str, based_on: str, destination: str, route: str) -> str:
    return str(uuid.uuid5(ACTION_NAMESPACE, f"{request_id}|{based_on}|{destination}|{route}"))


def top_priority(priorities: Sequence[str], default: Priority = Priority.MEDIUM) -> Priority:
    return Priority(min(priorities, key=PRIORITY_RANK.__getitem__)) if priorities else default


class ActionPlanner:
    def __init__(self, routing: RoutingRules) -> None:
        self.routing = routing

    def plan(
        self,
        analysis: AnalysisResults,
        insights: Sequence[Insight],
        as_of: datetime | None = None,
    ) -> list[ActionJob]:
        """Jobs ordered by priority, then by plan order; `sequence` is that position.

        `as_of` is the time shown in messages; pass the decision's envelope timestamp so a
        re-plan stays identical (default: the newest insight's `updated_at`).
        """
        ordered = sorted(insights, key=lambda i: (PRIORITY_RANK[i.priority], i.type, i.insight_id))
        when = as_of or max((i.updated_at for i in ordered), default=None)
        base = self._base_context(analysis, when)
        jobs: list[ActionJob] = []
        for insight in ordered:
            for route in self.routing.routes:
                if route.scope is RouteScope.INSIGHT and route.matches(
                    analysis.analysis_type, insight.category, insight.priority
                ):
                    jobs.append(self._insight_job(route, analysis, insight, base))
        for route in self.routing.routes:
            if route.scope is RouteScope.ANALYSIS:
                job = self._analysis_job(route, analysis, ordered, base)
                if job is not None:
                    jobs.append(job)
        jobs.sort(key=lambda j: PRIORITY_RANK[j.priority])  # stable: plan order within a rank
        return [job.model_copy(update={"sequence": n}) for n, job in enumerate(jobs)]

    # -- one job per insight --------------------------------------------------------------

    def _insight_job(
        self, route: Route, analysis: AnalysisResults, insight: Insight, base: dict[str, Any]
    ) -> ActionJob:
        context = {
            **base,
            **self._route_context(route, analysis),
            **insight_context(insight),
        }
        return self._job(route, analysis, insight.insight_id, insight.priority, context, insight)

    # -- one job per analysis -------------------------------------------------------------

    def _analysis_job(
        self,
        route: Route,
        analysis: AnalysisResults,
        insights: Sequence[Insight],
        base: dict[str, Any],
    ) -> ActionJob | None:
        if route.analysis_types and analysis.analysis_type not in route.analysis_types:
            return None
        qualifying = [
            i for i in insights if route.matches(analysis.analysis_type, i.category, i.priority)
        ]
        if route.severities and not qualifying:
            return None
        lead = qualifying[0] if qualifying else None
        recommendations = sorted(
            analysis.recommendations, key=lambda r: (PRIORITY_RANK[r.priority], r.id)
        )
        based_on = (
            lead.insight_id
            if lead is not None and route.severities
            else (recommendations[0].id if recommendations else f"{analysis.analysis_type}:scores")
        )
        priority = top_priority([i.priority for i in qualifying])
        context: dict[str, Any] = {
            **base,
            **self._route_context(route, analysis),
            "insights": [insight_context(i) for i in qualifying],
            "recommendations": [recommendation_context(r) for r in recommendations],
            "recommended_actions": [r.description for r in recommendations],
            "risk_level": self._risk_level(route, analysis, qualifying),
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
        return self._job(route, analysis, based_on, priority, context, lead)

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
