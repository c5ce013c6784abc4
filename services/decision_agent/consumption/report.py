"""Turn one account's row of a `FleetAssessment` into the wire `AnalysisResults`.

Every flag and factor carries evidence (metric and days, ticket ids, contract dates) and
every number in a sentence comes from the arrays, so the text can be checked. The models are
built from values of their declared types without re-validation (services/decision_agent/
trusted.py; tests/unit/consumption/test_consumption_trusted.py proves each result equals its
validated copy).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from contracts.analysis import AnalysisResults, Flag, Recommendation, ScoreDetail
from contracts.common import PRIORITY_RANK, AnalysisType, Evidence, Priority, Severity
from contracts.dataset import PreliminaryFinding
from services.decision_agent import trusted
from services.decision_agent.consumption.calendar import from_day
from services.decision_agent.consumption.inputs import CLASS_NAMES
from services.decision_agent.consumption.pipeline import (
    SEVERITY_ORDER,
    FleetAssessment,
    RiskState,
    trend_index,
)
from services.decision_agent.consumption.rule_models import TREND_CLASSES, Band, ConsumptionRules
from services.decision_agent.consumption.usage_anomaly import REASON_LABELS
from services.decision_agent.consumption.usage_events import SEVERITY_NAMES, event_id

USAGE_SOURCE = "consumption_daily_f"
DATA_GAP_CONFIDENCE = 0.75  # flags are less certain when the data agent reported gaps


def band_of(score: int, bands: list[Band]) -> str:
    return next(b.name for b in bands if b.low <= score <= b.high)


def renewal_phase(days: float, rules: ConsumptionRules) -> str | None:
    for name, limit in sorted(rules.renewal_phases.items(), key=lambda item: item[1]):
        if days <= limit:
            return name
    return None


def _num(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


class AccountView:
    """Sentences, evidence and payload parts for account `i` of an assessment."""

    def __init__(self, assessment: FleetAssessment, i: int, rules: ConsumptionRules) -> None:
        self.a = assessment
        self.i = i
        self.rules = rules
        self.inputs = assessment.inputs
        self.as_of = from_day(self.inputs.as_of_day)
        self.customer_class = CLASS_NAMES[int(self.inputs.customer_class[i])]

    # ------------------------------------------------------------------ trends
    def trend_class(self, metric: str, state: RiskState | None = None) -> str:
        trends = (state or self.a.now).trends
        return TREND_CLASSES[int(trends.trend_class[self.i, trend_index(self.rules, metric)])]

    def trend_sentence(self, metric: str) -> str:
        t = self.a.now.trends
        j = trend_index(self.rules, metric)
        i = self.i
        label = self.trend_class(metric)
        idle = int(t.idle_days[i, j])
        recent = float(t.recent_total[i, j])
        prior = float(t.prior_monthly[i, j])
        if label in ("Inactive", "Complete stop"):
            head = f"{metric}: no usage for {idle} days ({_num(recent)} in the last 30 days"
            head += f" vs {_num(prior)} per 30 days before) -> {label}"
        elif label == "New":
            head = f"{metric}: only {int(t.prior_days[i, j])} days of history before the last"
            head += f" 30 days ({_num(recent)} in them) -> {label}"
        else:
            head = f"{metric}: {_num(recent)} in the last 30 days vs {_num(prior)} per 30 days"
            head += f" over the {int(t.prior_days[i, j])} days before (ratio"
            head += f" {float(t.ratio[i, j]):.2f}) -> {label}"
        mom = float(t.mom[i, j])
        if math.isnan(mom):
            return head + "."
        head += f"; month over month {mom:+.0%}"
        norm = self.rules.classes[self.customer_class].growth_norm
        if norm is not None:
            status = "below" if mom < norm.low else "above" if mom > norm.high else "within"
            head += f" ({status} the {self.customer_class} norm {norm.low:.0%}-{norm.high:.0%})"
        return head + "."

    def usage_evidence(self, metric: str) -> Evidence:
        t = self.a.now.trends
        j = trend_index(self.rules, metric)
        return trusted.evidence(
            source=USAGE_SOURCE,
            ref=self.inputs.account_ids[self.i],
            field=metric,
            date=self.as_of.isoformat(),
            value={
                "last_30_days": float(t.recent_total[self.i, j]),
                "prior_per_30_days": round(float(t.prior_monthly[self.i, j]), 4),
                "ratio": None
                if not math.isfinite(t.ratio[self.i, j])
                else round(float(t.ratio[self.i, j]), 4),
                "idle_days": int(t.idle_days[self.i, j]),
                "month_over_month": None
                if math.isnan(t.mom[self.i, j])
                else round(float(t.mom[self.i, j]), 4),
            },
        )

    # ------------------------------------------------------------ side tables
    def ticket_evidence(self) -> list[Evidence]:
        t = self.inputs.tickets
        window = self.rules.signals.ticket_window_days
        day = self.inputs.as_of_day
        hit = (t.account == self.i) & t.high & (t.day > day - window) & (t.day <= day)
        return [
            trusted.evidence(
                source="support_ticket_f",
                ref=t.ids[int(k)],
                field="priority",
                date=from_day(t.day[k]).isoformat(),
            )
            for k in np.flatnonzero(hit)
        ]

    def contract_evidence(self) -> list[Evidence]:
        a = self.inputs.agreements
        hit = (a.account == self.i) & a.active & (a.end_day >= self.inputs.as_of_day)
        return [
            trusted.evidence(
                source="agreement_f",
                ref=a.ids[int(k)],
                field="end_date",
                date=from_day(a.end_day[k]).isoformat(),
                value={
                    "start_date": from_day(a.start_day[k]).isoformat(),
                    "monthly_usd": round(float(a.monthly_usd[k]), 2),
                },
            )
            for k in np.flatnonzero(hit)
        ]

    def signal_evidence(self, signal: str) -> list[Evidence]:
        primary = self.rules.trend.primary_metric
        # Callables: only the asked signal's evidence is built (this runs per active signal).
        by_signal: dict[str, Callable[[], list[Evidence]]] = {
            "support_escalation": self.ticket_evidence,
            "high_priority_ticket": self.ticket_evidence,
            "active_users_decline": lambda: [self.usage_evidence("active_users")],
            "single_user": lambda: [self.usage_evidence("active_users")],
            "few_users": lambda: [self.usage_evidence("active_users")],
            "committed_spend_underused": lambda: [
                self.usage_evidence("cost_usd"),
                *self.contract_evidence(),
            ],
            "spend_decline": lambda: [self.usage_evidence("cost_usd")],
            "renewal_near_no_activity": lambda: [
                *self.contract_evidence(),
                self.usage_evidence(primary),
            ],
            "renewal_immediate": self.contract_evidence,
            "renewal_near": self.contract_evidence,
            "ingestion_trend": lambda: [self.usage_evidence("data_ingested_bytes")],
            "compute_trend": lambda: [self.usage_evidence("engine_hours")],
            "no_ingestion_30_days": lambda: [self.usage_evidence("data_ingested_bytes")],
            "no_opportunity": lambda: [
                trusted.evidence(
                    source="opportunity_d",
                    ref=self.inputs.account_ids[self.i],
                    field="opportunity_id",
                )
            ],
            "no_customer_call_30_days": lambda: [
                trusted.evidence(
                    source="gong_call_f",
                    ref=self.inputs.account_ids[self.i],
                    field="calls_last_30_days",
                    value=int(self.a.now.commercials.calls[self.i]),
                )
            ],
        }
        return by_signal.get(signal, lambda: [self.usage_evidence(primary)])()

    # ----------------------------------------------------------------- scores
    def risk_detail(self, health: bool) -> ScoreDetail:
        rules = self.rules.classes[self.customer_class]
        points = self.a.now.factor_points[self.customer_class][self.i]
        factors = []
        for (name, factor), risk_points in zip(rules.factors.items(), points, strict=True):
            active = [s for s in factor.signals if self.a.now.signals[s][self.i] > 0]
            explanation = f"{name}: {risk_points:.1f} of {factor.weight:g} risk points" + (
                f" from {', '.join(active)}" if active else "; no risk signal"
            )
            evidence = [e for s in active for e in self.signal_evidence(s)]
            shown = factor.weight - risk_points if health else risk_points
            factors.append(
                trusted.score_factor(
                    factor=name,
                    points=round(float(shown), 2),
                    possible=factor.weight,
                    explanation=explanation,
                    evidence=evidence,
                )
            )
        if health:
            score = int(self.a.health[self.i])
            return trusted.score_detail(
                score=score, band=band_of(score, self.rules.health_bands), factors=factors
            )
        score = int(self.a.risk[self.i])
        return trusted.score_detail(
            score=score, band=band_of(score, self.rules.risk_bands), factors=factors
        )

    def trend_detail(self) -> ScoreDetail:
        risk_of = self.rules.trend.risk_by_class
        factors = []
        for metric in self.rules.trend.metrics:
            label = self.trend_class(metric)
            factors.append(
                trusted.score_factor(
                    factor=metric,
                    points=round(100 * (1 - risk_of.get(label, 0.0)), 2),
                    possible=100.0,
                    explanation=self.trend_sentence(metric),
                    evidence=[self.usage_evidence(metric)],
                )
            )
        primary = self.trend_class(self.rules.trend.primary_metric)
        score = round(100 * (1 - risk_of.get(primary, 0.0)))
        return trusted.score_detail(score=score, band=primary, factors=factors)

    # --------------------------------------------------------------- anomalies
    def recent_anomalies(self) -> list[dict[str, Any]]:
        """The usage anomaly events this analysis reports (new or escalated), one per
        metric and direction, each with its stable event id and its strongest day."""
        found = []
        lookback = self.rules.anomalies.event_lookback_days
        first = self.inputs.as_of_day - lookback + 1
        account = self.inputs.account_ids[self.i]
        for metric, by_direction in self.a.events.items():
            scores = self.a.anomalies[metric]
            for direction, events in by_direction.items():
                if not events.reported[self.i]:
                    continue
                onset = from_day(first + int(events.onset[self.i])).isoformat()
                peak = int(events.peak[self.i])
                found.append(
                    {
                        "event_id": event_id(account, metric, direction, onset),
                        "metric": metric,
                        "direction": direction,
                        "status": "escalated" if events.escalated[self.i] else "new",
                        "onset": onset,
                        "severity": SEVERITY_NAMES[int(events.severity[self.i])],
                        "date": from_day(first + peak).isoformat(),
                        "value": float(self.inputs.metric(metric)[self.i, -lookback + peak]),
                        "expected": round(float(scores.expected[self.i, peak]), 4),
                        "score": round(float(scores.score[self.i, peak]), 4),
                        "reason": REASON_LABELS[int(scores.reason[self.i, peak])],
                    }
                )
        return found

    def anomaly_flags(self, confidence_factor: float) -> list[Flag]:
        """One usage_anomaly flag per reported event (new, or worse than before)."""
        rule = self.rules.flags["usage_anomaly"]
        flags = []
        for x in self.recent_anomalies():
            went = "rose above" if x["direction"] == "up" else "fell below"
            status = f"got worse ({x['severity']})" if x["status"] == "escalated" else "new event"
            description = (
                f"{x['metric']} {went} its expected level on {x['onset']} ({status}); "
                f"strongest day {x['date']}: {_num(x['value'])} vs expected "
                f"{_num(x['expected'])} ({x['reason']}, score {x['score']:.2f})."
            )
            evidence = trusted.evidence(
                source=USAGE_SOURCE,
                ref=self.inputs.account_ids[self.i],
                field=x["metric"],
                date=x["date"],
                value={k: x[k] for k in ("event_id", "onset", "value", "expected", "score")},
            )
            flags.append(
                trusted.flag(
                    type=rule.type,
                    severity=Severity(x["severity"]),
                    description=description,
                    code="usage_anomaly",
                    category=rule.category,
                    insight_type=rule.insight_type,
                    confidence=round(rule.confidence * confidence_factor, 4),
                    evidence=[evidence],
                    event_id=x["event_id"],
                )
            )
        return flags

    # ------------------------------------------------------------------- flags
    def flag_description(self, code: str) -> tuple[str, list[Evidence]]:
        primary = self.rules.trend.primary_metric
        com = self.a.now.commercials
        i = self.i
        if code in ("usage_decline", "usage_spike", "usage_growth"):
            return self.trend_sentence(primary), [self.usage_evidence(primary)]
        if code == "cost_anomaly":
            return (self.trend_sentence("cost_usd") + " " + self.trend_sentence(primary)), [
                self.usage_evidence("cost_usd"),
                self.usage_evidence(primary),
            ]
        if code == "engagement_drop":
            return (
                self.trend_sentence("active_users")
                + f" Peak active users in the last 30 days: {_num(float(com.max_users[i]))}."
            ), [self.usage_evidence("active_users")]
        if code == "support_escalation":
            tickets = self.ticket_evidence()
            return (
                f"{len(tickets)} high-priority tickets in the last "
                f"{self.rules.signals.ticket_window_days} days: "
                f"{', '.join(str(t.ref) for t in tickets)}.",
                tickets,
            )
        if code == "contract_approaching":
            days = float(com.days_to_renewal[i])
            return (
                f"Contract ends in {days:.0f} days ({renewal_phase(days, self.rules)} renewal "
                "phase).",
                self.contract_evidence(),
            )
        if code in ("committed_spend_underused", "usage_above_commitment"):
            spend = float(self.a.now.trends.recent_total[i, trend_index(self.rules, "cost_usd")])
            return (
                f"Last {self.rules.trend.recent_days} days' spend {_num(spend)} USD is "
                f"{float(com.utilization[i]):.0%} "
                f"of the monthly commitment {_num(float(com.monthly_commit[i]))} USD.",
                [self.usage_evidence("cost_usd"), *self.contract_evidence()],
            )
        if code == "sustained_growth":
            months = self.a.now.trends.months[i, trend_index(self.rules, primary)]
            return (
                f"{primary} grew {self.rules.expansion.growth_streak_months}+ 30-day periods in a "
                f"row: {', '.join(_num(float(m)) for m in months)}.",
                [self.usage_evidence(primary)],
            )
        if code == "plg_to_commit":
            cost = self.a.now.trends.months[i, trend_index(self.rules, "cost_usd")]
            return (
                f"PLG account spending {', '.join(_num(float(m)) for m in cost[-2:])} USD in the "
                f"last two 30-day periods, {int(com.active_days[i])} active days, up to "
                f"{_num(float(com.max_users[i]))} users.",
                [self.usage_evidence("cost_usd"), self.usage_evidence("active_users")],
            )
        if code == "churn_risk_escalation":
            now, before = int(self.a.risk[i]), int(self.a.previous.risk[i])
            return (
                f"Churn risk {now} ({band_of(now, self.rules.risk_bands)}), was {before} "
                f"{self.rules.escalation_lookback_days} days ago ({now - before:+d} points).",
                [
                    trusted.evidence(
                        source="churn_risk",
                        ref=self.inputs.account_ids[i],
                        field="churn_risk",
                        date=self.as_of.isoformat(),
                        value={"now": now, "before": before},
                    )
                ],
            )
        return code, []

    def flags(self, confidence_factor: float) -> list[Flag]:
        found = []
        for code, hits in self.a.flags.items():
            if not hits[self.i]:
                continue
            if code == "usage_anomaly":
                found.extend(self.anomaly_flags(confidence_factor))
                continue
            rule = self.rules.flags[code]
            insight_type = rule.insight_type
            if code == "churn_risk_escalation":
                names = list(self.rules.classes[self.customer_class].factors)
                top = names[int(np.argmax(self.a.now.factor_points[self.customer_class][self.i]))]
                insight_type = self.rules.escalation_insight_by_factor.get(top, insight_type)
            description, evidence = self.flag_description(code)
            found.append(
                trusted.flag(
                    type=rule.type,
                    severity=SEVERITY_ORDER[int(self.a.severity[code][self.i])],
                    description=description,
                    code=code,
                    category=rule.category,
                    insight_type=insight_type,
                    confidence=round(rule.confidence * confidence_factor, 4),
                    evidence=evidence,
                )
            )
        return found

    def recommendations(self, flags: list[Flag]) -> list[Recommendation]:
        ranked = []
        for order, flag in enumerate(flags):
            rule = self.rules.flags[flag.code]
            priority = rule.priority or Priority(flag.severity.value)
            ranked.append((PRIORITY_RANK[priority], order, priority, rule, flag))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return [
            trusted.recommendation(
                id=f"rec-{n}",
                priority=priority,
                action=rule.action,
                description=rule.recommendation,
                evidence=flag.evidence,
                assignee=rule.assignee,
                based_on=[flag.code],
            )
            for n, (_, _, priority, rule, flag) in enumerate(ranked, start=1)
        ]

    def summary(self, flags: list[Flag]) -> str:
        risk = int(self.a.risk[self.i])
        days = float(self.a.now.commercials.days_to_renewal[self.i])
        phase = renewal_phase(days, self.rules)
        parts = [
            f"{self.inputs.account_ids[self.i]} ({self.customer_class}) as of {self.as_of}: "
            f"health {int(self.a.health[self.i])}, churn risk {risk} "
            f"({band_of(risk, self.rules.risk_bands)})",
            f"{self.rules.trend.primary_metric} "
            f"{self.trend_class(self.rules.trend.primary_metric)}",
        ]
        if phase:
            parts.append(f"renewal in {days:.0f} days ({phase})")
        if self.a.escalate[self.i]:
            parts.append("ESCALATE")
        codes = [f.code for f in flags]
        parts.append(f"{len(flags)} flags" + (f": {', '.join(codes)}" if codes else ""))
        return "; ".join(parts) + "."


def analysis_results(
    request_id: str,
    assessment: FleetAssessment,
    i: int,
    rules: ConsumptionRules,
    findings: list[PreliminaryFinding] | None = None,
) -> AnalysisResults:
    view = AccountView(assessment, i, rules)
    gaps = [f for f in findings or [] if f.type == "data_gap"]
    flags = view.flags(DATA_GAP_CONFIDENCE if gaps else 1.0)
    health = view.risk_detail(health=True)
    risk = view.risk_detail(health=False)
    trend = view.trend_detail()
    summary = view.summary(flags)
    if gaps:
        summary += f" Data gaps reported: {'; '.join(g.description for g in gaps)}."
    recommendations = view.recommendations(flags)
    return trusted.analysis_results(
        request_id=request_id,
        analysis_type=AnalysisType.CONSUMPTION,
        subject=trusted.subject(assessment.inputs.account_ids[i], None),
        body=trusted.analysis_body(
            scores={
                "customer_health": health.score,
                "churn_risk": risk.score,
                "usage_trend": trend.score,
            },
            score_details={"customer_health": health, "churn_risk": risk, "usage_trend": trend},
            flags=flags,
        ),
        recommendations=recommendations,
        conversation_topics=[],
        risk_mitigations=[
            f"{r.action} ({r.assignee})"
            for r in recommendations
            if r.priority in (Priority.CRITICAL, Priority.HIGH)
        ],
        summary=summary,
    )
