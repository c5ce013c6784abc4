"""The model of `rules/renewal_risk.yaml` (kind: renewal_risk); see that file for meanings."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.analysis import FlagType, InsightCategory
from contracts.common import Priority, Severity
from services.common.rulefiles import RuleFile, RuleIssue, register_rule_kind
from services.decision_agent.deal_quality.rule_models import Band, band_issues

_EPSILON = 1e-9


class Motion(StrEnum):
    """The renewal motion an analysis recommends."""

    EXPAND = "expand"
    RENEW_AS_IS = "renew_as_is"
    RESCUE = "rescue"
    EXECUTIVE_ESCALATION = "executive_escalation"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phase(_Strict):
    name: str
    within_days: int = Field(ge=0)


class CommitmentRules(_Strict):
    shortfall_below: float = Field(gt=0)
    on_pace_from: float = Field(gt=0)
    expansion_from: float = Field(gt=0)


class TicketRules(_Strict):
    priorities: list[str]
    full_risk_count: int = Field(ge=1)


class EngagementRules(_Strict):
    window_days: int = Field(ge=1)
    executive_titles: list[str] = Field(min_length=1)


class Weights(_Strict):
    commitment: float = Field(ge=0)
    usage_trend: float = Field(ge=0)
    customer_health: float = Field(ge=0)
    support: float = Field(ge=0)
    executive_engagement: float = Field(ge=0)

    def total(self) -> float:
        return (
            self.commitment
            + self.usage_trend
            + self.customer_health
            + self.support
            + self.executive_engagement
        )


class MotionRule(_Strict):
    flag_type: FlagType
    severity: Severity
    category: InsightCategory
    insight_type: str
    priority: Priority
    assignee: str
    action: str
    description: str  # the finding; {agreement} {end_date} {days} {phase} {risk} {band} {pace}
    recommendation: str  # what to do, same placeholders


class MotionRules(_Strict):
    at_risk_from: int = Field(ge=0, le=100)
    expand: MotionRule
    renew_as_is: MotionRule
    rescue: MotionRule
    executive_escalation: MotionRule

    def rule(self, motion: Motion) -> MotionRule:
        rule: MotionRule = getattr(self, motion.value)
        return rule


@register_rule_kind
class RenewalRiskRules(RuleFile):
    """Renewal risk: phases, factor thresholds, weights (risk points), bands and motions."""

    rule_kind: ClassVar[str] = "renewal_risk"

    horizon_days: int = Field(ge=1)
    phases: list[Phase] = Field(min_length=1)
    usage_window_days: int = Field(ge=7)
    commitment: CommitmentRules
    tickets: TicketRules
    engagement: EngagementRules
    weights: Weights
    bands: list[Band]
    motions: MotionRules

    def issues(self) -> list[RuleIssue]:
        issues = band_issues(self.bands)
        if abs(self.weights.total() - 100) > _EPSILON:
            issues.append(
                RuleIssue(("weights",), f"weights add up to {self.weights.total():g}, not 100")
            )
        days = [p.within_days for p in self.phases]
        if days != sorted(days) or days[-1] != self.horizon_days:
            issues.append(
                RuleIssue(("phases",), "phases must grow and the last must end at horizon_days")
            )
        c = self.commitment
        if not c.shortfall_below < c.on_pace_from <= c.expansion_from:
            issues.append(
                RuleIssue(
                    ("commitment",),
                    "expected shortfall_below < on_pace_from <= expansion_from",
                )
            )
        return issues
