"""The model of `rules/consumption.yaml` (kind: consumption); see that file for meanings."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.analysis import FlagType, InsightCategory
from contracts.common import Priority, Severity
from services.common.rulefiles import RuleFile, RuleIssue, register_rule_kind
from services.decision_agent.consumption.detector_config import DetectorConfig

TREND_CLASSES = (
    "Inactive",
    "Complete stop",
    "New",
    "Major decline",
    "Declining",
    "Spike",
    "Growing",
    "Stable",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrendRules(_Strict):
    recent_days: int = Field(30, ge=7)
    prior_days: int = Field(90, ge=14)
    min_prior_days: int = Field(14, ge=1)
    idle_days: int = Field(14, ge=1)
    major_decline_below: float = 0.3
    declining_below: float = 0.7
    spike_above: float = 3.0
    growing_above: float = 1.3
    metrics: list[str]
    primary_metric: str = "query_count"
    decline_classes: list[str]
    decline_severity: dict[str, Severity] = Field(default_factory=dict)
    risk_by_class: dict[str, float]


class GrowthNorm(_Strict):
    low: float
    high: float


class SignalRules(_Strict):
    mom_decline_below: float = -0.30
    below_history_ratio: float = 0.5
    high_priorities: list[str] = Field(default_factory=lambda: ["P1", "P2"])
    ticket_window_days: int = 30
    escalation_ticket_count: int = 3
    underused_below: float = 0.6
    overused_from: float = 1.2
    single_user_after_days: int = 60
    few_users_below: float = 3
    call_window_days: int = 30
    renewal_window_days: int = 90


class FactorRules(_Strict):
    weight: float = Field(gt=0)
    signals: dict[str, float] = Field(description="signal -> risk share in [0, 1]")


class ClassRules(_Strict):
    factors: dict[str, FactorRules]
    growth_norm: GrowthNorm | None = None


class Band(_Strict):
    name: str
    low: int
    high: int


class ExpansionRules(_Strict):
    growth_streak_months: int = 3
    month_growth_min: float = 0.0
    plg_monthly_spend_min: float = 2000
    plg_spend_months: int = 2
    plg_active_days_min: int = 90
    plg_users_min: float = 3
    cost_spike_ratio: float = 3.0
    cost_usage_growth_max: float = 1.3


class FlagRules(_Strict):
    type: FlagType
    category: InsightCategory
    insight_type: str
    severity: Severity
    confidence: float = Field(0.8, ge=0, le=1)
    action: str
    recommendation: str
    assignee: str
    priority: Priority | None = None


class AnomalyRules(_Strict):
    metrics: list[str]
    recent_days: int = Field(7, ge=1, description="An event is new this many days.")
    event_lookback_days: int = Field(
        35, ge=8, description="Days scored to find events and their onsets."
    )
    merge_gap_days: int = Field(
        5, ge=0, description="Flagged days this close (same direction) are one event."
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig)


@register_rule_kind
class ConsumptionRules(RuleFile):
    rule_kind: ClassVar[str] = "consumption"

    history_days: int = Field(180, ge=150)
    escalation_lookback_days: int = 30
    escalation_rise: int = 20
    escalation_above: int = 75
    trend: TrendRules
    signals: SignalRules = Field(default_factory=SignalRules)
    expansion: ExpansionRules = Field(default_factory=ExpansionRules)
    classes: dict[str, ClassRules]
    risk_bands: list[Band]
    health_bands: list[Band]
    renewal_phases: dict[str, int]
    anomalies: AnomalyRules
    flags: dict[str, FlagRules]
    escalation_insight_by_factor: dict[str, str] = Field(default_factory=dict)

    def issues(self) -> list[RuleIssue]:
        found: list[RuleIssue] = []
        for name, rules in self.classes.items():
            total = sum(f.weight for f in rules.factors.values())
            if abs(total - 100) > 1e-9:
                found.append(RuleIssue(("classes", name), f"weights add up to {total}, not 100"))
        for key in ("risk_bands", "health_bands"):
            bands = sorted(getattr(self, key), key=lambda b: b.low)
            covered = 0
            for band in bands:
                if band.low != covered:
                    found.append(RuleIssue((key,), f"bands leave a gap or overlap at {band.low}"))
                covered = band.high + 1
            if covered != 101:
                found.append(RuleIssue((key,), "bands must cover 0..100"))
        for cls, rule in self.trend.risk_by_class.items():
            if cls not in TREND_CLASSES or not 0 <= rule <= 1:
                found.append(RuleIssue(("trend", "risk_by_class", cls), "unknown class or risk"))
        if self.anomalies.event_lookback_days <= self.anomalies.recent_days:
            found.append(RuleIssue(("anomalies", "event_lookback_days"), "must exceed recent_days"))
        for name in ("commit", "plg", "prospect"):
            if name not in self.classes:
                found.append(RuleIssue(("classes",), f"missing customer class {name}"))
        return found
