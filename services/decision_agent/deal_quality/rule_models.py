"""Schemas of the deal-quality rule files (kinds registered with the generic loader).

Cross-field checks (unknown factors/checks, weights that do not add up, overlapping or gapped
bands, bad parameters) are :meth:`issues` so the loader reports them with file and line.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.analysis import FlagType, InsightCategory
from contracts.common import Priority, Severity
from services.common.rulefiles import Loc, RuleFile, RuleIssue, register_rule_kind

# The stage model lives with the generic rules (the data agent reads it too); re-exported.
from services.common.stages import MEDDPICC_FIELDS as MEDDPICC_FIELDS
from services.common.stages import StageRule as StageRule
from services.common.stages import StageRules as StageRules
from services.decision_agent.deal_quality.registry import CHECKS, CONSISTENCY_CHECKS, MEASURES

RUBRIC_SCORES = ("icp_fit", "deal_health", "technical_fit")
SCORE_NAMES = ("icp_fit", "deal_health", "data_completeness", "technical_fit")
ASSIGNEES = ("account_executive", "solutions_engineering", "sales_leadership", "revops")
#: docs/domain.md §5: the insight types each category may carry.
INSIGHT_TYPES: dict[InsightCategory, tuple[str, ...]] = {
    InsightCategory.DEAL_QUALITY: (
        "icp_alignment",
        "icp_misalignment",
        "technical_fit",
        "commercial_fit",
        "competitive_threat",
        "data_quality",
        "missing_data",
        "company_size_mismatch",
    ),
    InsightCategory.PIPELINE_HEALTH: (
        "conversion_rate_decline",
        "velocity_slowdown",
        "coverage_gap",
    ),
}
_EPSILON = 1e-6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(_Strict):
    name: str
    min: int = Field(ge=0, le=100)
    max: int = Field(ge=0, le=100)


def band_issues(bands: Sequence[Band], loc: Loc = ("bands",)) -> list[RuleIssue]:
    """Bands must cover 0..100 exactly once (integer scores), without gaps or overlaps."""
    issues = [
        RuleIssue((*loc, i), f"band {b.name!r}: min {b.min} is above max {b.max}")
        for i, b in enumerate(bands)
        if b.min > b.max
    ]
    if issues or not bands:
        return issues or [RuleIssue(loc, "at least one band is required")]
    ordered = sorted(enumerate(bands), key=lambda item: item[1].min)
    if ordered[0][1].min != 0:
        issues.append(RuleIssue((*loc, ordered[0][0]), "the lowest band must start at 0"))
    if ordered[-1][1].max != 100:
        issues.append(RuleIssue((*loc, ordered[-1][0]), "the highest band must end at 100"))
    for (_, low), (index, high) in itertools.pairwise(ordered):
        if high.min <= low.max:
            issues.append(
                RuleIssue((*loc, index), f"band {high.name!r} overlaps band {low.name!r}")
            )
        elif high.min > low.max + 1:
            issues.append(
                RuleIssue(
                    (*loc, index),
                    f"gap between band {low.name!r} (max {low.max}) and {high.name!r} "
                    f"(min {high.min})",
                )
            )
    names = [b.name for b in bands]
    for i, name in enumerate(names):
        if names.index(name) != i:
            issues.append(RuleIssue((*loc, i), f"duplicate band name {name!r}"))
    return issues


def band_for(bands: Sequence[Band], score: int) -> str:
    for band in bands:
        if band.min <= score <= band.max:
            return band.name
    return bands[-1].name


def params_issues(
    params: dict[str, Any], model: type[BaseModel] | None, loc: Loc
) -> list[RuleIssue]:
    if model is None:
        return []
    try:
        model.model_validate(params)
    except ValidationError as exc:
        return [RuleIssue((*loc, *err["loc"]), err["msg"]) for err in exc.errors(include_url=False)]
    return []


# ------------------------------------------------------------------------ rubrics


class FactorRule(_Strict):
    factor: str
    measure: str
    points: float = Field(gt=0)
    params: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None


class CategoryRule(_Strict):
    name: str
    points: float = Field(gt=0)
    factors: list[FactorRule] = Field(min_length=1)


@register_rule_kind
class Rubric(RuleFile):
    """A points rubric: factor points sum to their category, categories to ``total``."""

    rule_kind: ClassVar[str] = "deal_rubric"

    score: Literal["icp_fit", "deal_health", "technical_fit"]
    title: str
    total: float = Field(gt=0)
    categories: list[CategoryRule] = Field(min_length=1)
    bands: list[Band]

    def issues(self) -> list[RuleIssue]:

        issues: list[RuleIssue] = []
        names: set[str] = set()
        for i, category in enumerate(self.categories):
            factor_sum = sum(f.points for f in category.factors)
            if abs(factor_sum - category.points) > _EPSILON:
                issues.append(
                    RuleIssue(
                        ("categories", i, "points"),
                        f"category {category.name!r} states {category.points:g} points but its "
                        f"factors add up to {factor_sum:g}",
                    )
                )
            for j, factor in enumerate(category.factors):
                loc: Loc = ("categories", i, "factors", j)
                if factor.factor in names:
                    issues.append(
                        RuleIssue((*loc, "factor"), f"duplicate factor {factor.factor!r}")
                    )
                names.add(factor.factor)
                measure = MEASURES.get(factor.measure)
                if measure is None:
                    issues.append(
                        RuleIssue(
                            (*loc, "measure"),
                            f"unknown factor measure {factor.measure!r}; known: "
                            f"{', '.join(sorted(MEASURES))}",
                        )
                    )
                    continue
                issues.extend(params_issues(factor.params, measure.params, (*loc, "params")))
        category_sum = sum(c.points for c in self.categories)
        if abs(category_sum - self.total) > _EPSILON:
            issues.append(
                RuleIssue(
                    ("total",),
                    f"total is {self.total:g} but the categories add up to {category_sum:g}",
                )
            )
        issues.extend(band_issues(self.bands))
        return issues


# ------------------------------------------------------------------------ completeness


class ConsistencyRule(_Strict):
    check: str
    points: float = Field(gt=0)
    params: dict[str, Any] = Field(default_factory=dict)


@register_rule_kind
class CompletenessRules(RuleFile):
    """Data completeness: stage-aware required fields plus consistency checks."""

    rule_kind: ClassVar[str] = "data_completeness_rules"

    total: float = Field(gt=0)
    required_fields_points: float = Field(ge=0)
    base_required_fields: list[str] = Field(default_factory=list)
    consistency: list[ConsistencyRule] = Field(default_factory=list)
    bands: list[Band]

    def issues(self) -> list[RuleIssue]:
        from contracts.dataset import Opportunity

        issues: list[RuleIssue] = []
        for i, field in enumerate(self.base_required_fields):
            if field not in Opportunity.model_fields:
                issues.append(
                    RuleIssue(("base_required_fields", i), f"unknown opportunity field {field!r}")
                )
        for i, rule in enumerate(self.consistency):
            check = CONSISTENCY_CHECKS.get(rule.check)
            if check is None:
                issues.append(
                    RuleIssue(
                        ("consistency", i, "check"),
                        f"unknown consistency check {rule.check!r}; known: "
                        f"{', '.join(sorted(CONSISTENCY_CHECKS))}",
                    )
                )
                continue
            issues.extend(params_issues(rule.params, check.params, ("consistency", i, "params")))
        stated = self.required_fields_points + sum(r.points for r in self.consistency)
        if abs(stated - self.total) > _EPSILON:
            issues.append(
                RuleIssue(
                    ("total",),
                    f"total is {self.total:g} but required fields and consistency checks add "
                    f"up to {stated:g}",
                )
            )
        issues.extend(band_issues(self.bands))
        return issues


# ------------------------------------------------------------------------ risks


class RecommendationRule(_Strict):
    action: str
    priority: Priority
    assignee: Literal["account_executive", "solutions_engineering", "sales_leadership", "revops"]
    description: str


class RiskRule(_Strict):
    code: str
    check: str
    params: dict[str, Any] = Field(default_factory=dict)
    type: FlagType
    severity: Severity
    category: InsightCategory
    insight_type: str
    confidence: float = Field(default=0.8, ge=0, le=1)
    description: str
    mitigation: str | None = None
    topic: str | None = None
    recommendation: RecommendationRule | None = None


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@register_rule_kind
class RiskRules(RuleFile):
    """Risk flags and positive signals, each naming a check implemented in code."""

    rule_kind: ClassVar[str] = "deal_risk_rules"

    rules: list[RiskRule]

    def issues(self) -> list[RuleIssue]:

        issues: list[RuleIssue] = []
        codes: set[str] = set()
        for i, rule in enumerate(self.rules):
            loc: Loc = ("rules", i)
            if rule.code in codes:
                issues.append(RuleIssue((*loc, "code"), f"duplicate code {rule.code!r}"))
            codes.add(rule.code)
            allowed = INSIGHT_TYPES.get(rule.category, ())
            if rule.insight_type not in allowed:
                issues.append(
                    RuleIssue(
                        (*loc, "insight_type"),
                        f"insight type {rule.insight_type!r} is not one of {rule.category.value}: "
                        f"{', '.join(allowed)}",
                    )
                )
            check = CHECKS.get(rule.check)
            if check is None:
                issues.append(
                    RuleIssue(
                        (*loc, "check"),
                        f"unknown check {rule.check!r}; known: {', '.join(sorted(CHECKS))}",
                    )
                )
                continue
            issues.extend(params_issues(rule.params, check.params, (*loc, "params")))
            texts = [("description", rule.description)]
            if rule.recommendation is not None:
                texts.append(("recommendation", rule.recommendation.description))
            for key, text in texts:
                unknown = _template_fields(text) - set(check.provides)
                if unknown:
                    issues.append(
                        RuleIssue(
                            (*loc, key),
                            f"unknown placeholders {sorted(unknown)}; check {rule.check!r} "
                            f"provides {sorted(check.provides)}",
                        )
                    )
        return issues


# ------------------------------------------------------------------------ overall


@register_rule_kind
class OverallRules(RuleFile):
    """How the overall deal_quality score combines the four sub-scores."""

    rule_kind: ClassVar[str] = "deal_quality_overall"

    total: float = Field(gt=0)
    weights: dict[str, float]
    bands: list[Band]

    def issues(self) -> list[RuleIssue]:
        issues: list[RuleIssue] = []
        for name, weight in self.weights.items():
            if name not in SCORE_NAMES:
                issues.append(
                    RuleIssue(("weights", name), f"unknown score {name!r}; known: {SCORE_NAMES}")
                )
            if weight < 0:
                issues.append(RuleIssue(("weights", name), "weight must not be negative"))
        stated = sum(self.weights.values())
        if abs(stated - self.total) > _EPSILON:
            issues.append(
                RuleIssue(("total",), f"total is {self.total:g} but weights add up to {stated:g}")
            )
        issues.extend(band_issues(self.bands))
        return issues


# ------------------------------------------------------------------------ backtest


class BacktestFit(_Strict):
    folds: int = Field(default=5, ge=2, le=20)
    min_train_deals: int = Field(default=30, ge=10)
    regularization_c: float = Field(default=1.0, gt=0)


@register_rule_kind
class BacktestRules(RuleFile):
    """How `revops backtest deals` scores history and what it warns about."""

    rule_kind: ClassVar[str] = "deal_backtest"

    horizon_days: int = Field(default=30, ge=1)
    bootstrap_resamples: int = Field(default=1000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    seed: int = 7
    leakage_auc: float = Field(default=0.9, gt=0.5, le=1)
    dominant_band_share: float = Field(default=0.75, gt=0, le=1)
    fit: BacktestFit = Field(default_factory=BacktestFit)
