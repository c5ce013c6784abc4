"""`RenewalRiskAnalyzer`: one account's next renewal, its risk and the motion it calls for.

The agreement is the account's active one that ends first within `horizon_days`. Risk is
0-100 (higher is riskier), the sum of five factors weighted by `rules/renewal_risk.yaml`:

* commitment: spend of the last `usage_window_days` against the committed monthly amount
  (agreement amount / term): full risk below `shortfall_below`, none from `on_pace_from`;
* usage trend and customer health: the consumption analysis of the same dataset (its trend
  classes and health score, so the thresholds of consumption.yaml are the only ones);
* support: open tickets of the listed priorities, full risk from `full_risk_count`;
* executive engagement: full risk when no executive (a contact whose title matches
  `executive_titles`) joined a customer call in `window_days`, less the more recent the call.

Motion: at or above `motions.at_risk_from`, executive escalation when no executive is
engaged, else rescue; below it, expand when spend is at `expansion_from` of the commitment or
more, else renew as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from contracts.analysis import (
    AnalysisBody,
    AnalysisResults,
    Flag,
    Recommendation,
    ScoreDetail,
    ScoreFactor,
)
from contracts.common import AnalysisType, Evidence, Subject
from contracts.dataset import Agreement, Call, DatasetBase, PreliminaryFinding
from services.common.rulefiles import load_rule_file
from services.decision_agent.consumption.analyzer import ConsumptionAnalyzer, analysis_day
from services.decision_agent.deal_quality.rule_models import band_for
from services.decision_agent.renewal.rule_models import Motion, RenewalRiskRules

RULE_FILE = "renewal_risk.yaml"
SCORE = "renewal_risk"


def load_renewal_rules(rules_dir: Path) -> RenewalRiskRules:
    """Read `<rules_dir>/renewal_risk.yaml` (raises RuleFileError with file:line problems)."""
    return load_rule_file(Path(rules_dir) / RULE_FILE, RenewalRiskRules)


@dataclass(frozen=True)
class Renewal:
    agreement: Agreement
    days_left: int
    phase: str


@dataclass(frozen=True)
class Engagement:
    last_call: Call | None
    executive: str | None  # the executive's e-mail on that call

    def days_since(self, day: date) -> int | None:
        if self.last_call is None:
            return None
        return (day - self.last_call.start_ts.date()).days


def next_renewal(dataset: DatasetBase, day: date, rules: RenewalRiskRules) -> Renewal | None:
    """The active agreement that ends first within the horizon, with its phase."""
    renewing = [
        a
        for a in dataset.agreements
        if a.is_active and a.start_date <= day <= a.end_date <= day + timedelta(rules.horizon_days)
    ]
    if not renewing:
        return None
    agreement = min(renewing, key=lambda a: (a.end_date, a.agreement_id))
    days_left = (agreement.end_date - day).days
    phase = next(p.name for p in rules.phases if days_left <= p.within_days)
    return Renewal(agreement, days_left, phase)


def executive_engagement(dataset: DatasetBase, day: date, rules: RenewalRiskRules) -> Engagement:
    """The latest customer call in the window that an executive of the account joined."""
    titles = [t.lower() for t in rules.engagement.executive_titles]
    executives = {
        c.email.lower()
        for c in dataset.contacts
        if c.email and c.title and any(t in c.title.lower() for t in titles)
    }
    since = day - timedelta(days=rules.engagement.window_days)
    best: tuple[Call, str] | None = None
    for call in dataset.calls:
        if not since <= call.start_ts.date() <= day:
            continue
        joined = sorted(e for e in (p.lower() for p in call.participant_emails) if e in executives)
        if joined and (best is None or call.start_ts > best[0].start_ts):
            best = (call, joined[0])
    return Engagement(best[0], best[1]) if best else Engagement(None, None)


def _between(value: float, full_risk_at: float, no_risk_at: float) -> float:
    """Risk fraction 1 at `full_risk_at`, 0 at `no_risk_at`, linear between."""
    if value <= full_risk_at:
        return 1.0
    if value >= no_risk_at:
        return 0.0
    return (no_risk_at - value) / (no_risk_at - full_risk_at)


class RenewalRiskAnalyzer:
    def __init__(self, rules: RenewalRiskRules, consumption: ConsumptionAnalyzer) -> None:
        self.rules = rules
        self.consumption = consumption

    def analyze(
        self, request_id: str, dataset: DatasetBase, findings: list[PreliminaryFinding]
    ) -> AnalysisResults:
        day = analysis_day(dataset)
        account = dataset.account
        subject = Subject(account_id=account.sf_account_id, account_name=account.sf_account_name)
        renewal = next_renewal(dataset, day, self.rules)
        if renewal is None:
            return AnalysisResults(
                request_id=request_id,
                analysis_type=AnalysisType.RENEWAL_RISK,
                subject=subject,
                analysis_results=AnalysisBody(),
                summary=f"No agreement of {account.sf_account_name} renews within "
                f"{self.rules.horizon_days} days of {day}.",
            )
        usage = self.consumption.analyze(request_id, dataset, findings).analysis_results
        pace = self._pace(dataset, day, renewal.agreement)
        engagement = executive_engagement(dataset, day, self.rules)
        factors = [
            self._commitment(pace, renewal.agreement),
            self._usage_trend(usage.score_details.get("usage_trend")),
            self._health(usage.score_details.get("customer_health")),
            self._support(dataset, day),
            self._executive(engagement, day),
        ]
        risk = round(sum(f.points for f in factors))
        detail = ScoreDetail(score=risk, band=band_for(self.rules.bands, risk), factors=factors)
        motion = self._motion(risk, pace, engagement)
        flag, recommendation = self._finding(motion, renewal, detail, pace, factors)
        health = usage.scores.get("customer_health")
        scores = {SCORE: risk, **({"customer_health": health} if health is not None else {})}
        return AnalysisResults(
            request_id=request_id,
            analysis_type=AnalysisType.RENEWAL_RISK,
            subject=subject,
            analysis_results=AnalysisBody(
                scores=scores, score_details={SCORE: detail}, flags=[flag]
            ),
            recommendations=[recommendation],
            summary=(
                f"{account.sf_account_name}: agreement {renewal.agreement.agreement_id} renews "
                f"on {renewal.agreement.end_date} ({renewal.days_left} days, {renewal.phase}). "
                f"Renewal risk {risk} ({detail.band}); recommended motion: "
                f"{motion.value.replace('_', ' ')}."
            ),
        )

    # ------------------------------------------------------------------ factors

    def _pace(self, dataset: DatasetBase, day: date, agreement: Agreement) -> float:
        """Spend of the usage window, per month, over the committed monthly amount."""
        window = self.rules.usage_window_days
        first = day - timedelta(days=window - 1)
        # summed in day order, one value at a time (as the rows always were)
        spent = sum(dataset.usage_series().between("cost_usd", first, day))
        committed = agreement.amount / max(agreement.term_months, 1)
        return (spent * 30 / window) / committed if committed > 0 else 0.0

    def _commitment(self, pace: float, agreement: Agreement) -> ScoreFactor:
        c = self.rules.commitment
        weight = self.rules.weights.commitment
        return ScoreFactor(
            factor="commitment",
            points=round(weight * _between(pace, c.shortfall_below, c.on_pace_from), 2),
            possible=weight,
            explanation=f"spend runs at {pace:.0%} of the committed monthly amount",
            evidence=[
                Evidence(
                    source="agreement_f",
                    ref=agreement.agreement_id,
                    field="amount",
                    value=agreement.amount,
                    snippet=f"{agreement.term_months} months, ends {agreement.end_date}",
                )
            ],
        )

    def _usage_trend(self, trend: ScoreDetail | None) -> ScoreFactor:
        weight = self.rules.weights.usage_trend
        if trend is None:
            return ScoreFactor(factor="usage_trend", points=0, possible=weight)
        return ScoreFactor(
            factor="usage_trend",
            points=round(weight * (1 - trend.score / 100), 2),
            possible=weight,
            explanation=f"usage trend: {trend.band}",
            evidence=[e for f in trend.factors[:1] for e in f.evidence],
        )

    def _health(self, health: ScoreDetail | None) -> ScoreFactor:
        weight = self.rules.weights.customer_health
        if health is None:
            return ScoreFactor(factor="customer_health", points=0, possible=weight)
        return ScoreFactor(
            factor="customer_health",
            points=round(weight * (1 - health.score / 100), 2),
            possible=weight,
            explanation=f"customer health {health.score} ({health.band})",
        )

    def _support(self, dataset: DatasetBase, day: date) -> ScoreFactor:
        t = self.rules.tickets
        weight = self.rules.weights.support
        open_tickets = [
            k
            for k in dataset.tickets
            if k.priority in t.priorities
            and k.created_at_ts.date() <= day
            and (k.resolved_at_ts is None or k.resolved_at_ts.date() > day)
        ]
        share = min(len(open_tickets) / t.full_risk_count, 1.0)
        return ScoreFactor(
            factor="support",
            points=round(weight * share, 2),
            possible=weight,
            explanation=f"{len(open_tickets)} open {'/'.join(t.priorities)} ticket(s)",
            evidence=[
                Evidence(
                    source="support_ticket_f", ref=k.ticket_id, field="priority", value=k.priority
                )
                for k in open_tickets[:5]
            ],
        )

    def _executive(self, engagement: Engagement, day: date) -> ScoreFactor:
        weight = self.rules.weights.executive_engagement
        window = self.rules.engagement.window_days
        days = engagement.days_since(day)
        if engagement.last_call is None or days is None:
            return ScoreFactor(
                factor="executive_engagement",
                points=weight,
                possible=weight,
                explanation=f"no executive on a customer call in the last {window} days",
            )
        call = engagement.last_call
        return ScoreFactor(
            factor="executive_engagement",
            points=round(weight * days / window, 2),
            possible=weight,
            explanation=f"{engagement.executive} joined a call {days} days ago",
            evidence=[
                Evidence(
                    source="gong_call_f",
                    ref=call.call_id,
                    field="participant_emails",
                    date=call.start_ts.date().isoformat(),
                    snippet=call.title,
                )
            ],
        )

    # ------------------------------------------------------------------ motion

    def _motion(self, risk: int, pace: float, engagement: Engagement) -> Motion:
        if risk >= self.rules.motions.at_risk_from:
            if engagement.last_call is None:
                return Motion.EXECUTIVE_ESCALATION
            return Motion.RESCUE
        if pace >= self.rules.commitment.expansion_from:
            return Motion.EXPAND
        return Motion.RENEW_AS_IS

    def _finding(
        self,
        motion: Motion,
        renewal: Renewal,
        detail: ScoreDetail,
        pace: float,
        factors: list[ScoreFactor],
    ) -> tuple[Flag, Recommendation]:
        rule = self.rules.motions.rule(motion)
        agreement = renewal.agreement
        values = {
            "agreement": agreement.agreement_id,
            "end_date": agreement.end_date.isoformat(),
            "days": renewal.days_left,
            "phase": renewal.phase,
            "risk": detail.score,
            "band": detail.band,
            "pace": f"{pace:.0%}",
        }
        evidence = [e for f in factors for e in f.evidence][:8]
        code = f"renewal_{motion.value}"
        flag = Flag(
            type=rule.flag_type,
            severity=rule.severity,
            description=rule.description.format(**values),
            code=code,
            category=rule.category,
            insight_type=rule.insight_type,
            evidence=evidence,
        )
        recommendation = Recommendation(
            id=f"rec-{code}",
            priority=rule.priority,
            action=rule.action,
            description=rule.recommendation.format(**values),
            evidence=evidence,
            assignee=rule.assignee,
            based_on=[code],
        )
        return flag, recommendation
