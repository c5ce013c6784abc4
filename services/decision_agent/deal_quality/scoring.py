"""Evaluate a points rubric (rubric YAML + factor measures) into a ScoreDetail."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.analysis import ScoreDetail, ScoreFactor
from services.decision_agent.deal_quality import trusted
from services.decision_agent.deal_quality.context import DealContext
from services.decision_agent.deal_quality.factors import MEASURES, Measure, Params
from services.decision_agent.deal_quality.rule_models import Band, Rubric, band_for


@dataclass(frozen=True)
class CompiledFactor:
    name: str
    category: str
    label: str  # "category.factor", as shown in the breakdown
    possible: float
    measure: Measure
    params: Params


@dataclass(frozen=True)
class CompiledRubric:
    """A rubric with measures and parameters resolved once at start-up."""

    score: str
    total: float
    bands: tuple[Band, ...]
    factors: tuple[CompiledFactor, ...]

    @classmethod
    def from_rubric(cls, rubric: Rubric) -> CompiledRubric:
        factors = tuple(
            CompiledFactor(
                name=factor.factor,
                category=category.name,
                label=f"{category.name}.{factor.factor}",
                possible=factor.points,
                measure=MEASURES[factor.measure],
                params=MEASURES[factor.measure].params.model_validate(factor.params),
            )
            for category in rubric.categories
            for factor in category.factors
        )
        return cls(rubric.score, rubric.total, tuple(rubric.bands), factors)

    def evaluate(self, ctx: DealContext) -> tuple[ScoreDetail, list[tuple[str, str]]]:
        """The score detail and the data gaps (factor, missing item) met on the way."""
        factors: list[ScoreFactor] = []
        gaps: list[tuple[str, str]] = []
        earned = 0.0
        for factor in self.factors:
            outcome = factor.measure.fn(ctx, factor.params)
            fraction = outcome.fraction
            if fraction <= 0.0:
                points = 0.0
            elif fraction >= 1.0:
                points = factor.possible
            else:
                points = round(factor.possible * fraction, 4)
            earned += points
            if outcome.gap:
                gaps.append((f"{self.score}.{factor.name}", outcome.gap))
            factors.append(
                trusted.score_factor(
                    factor.label, points, factor.possible, outcome.explanation, [*outcome.evidence]
                )
            )
        score = max(0, min(100, round(earned / self.total * 100)))
        detail = trusted.score_detail(score, band_for(self.bands, score), factors)
        return detail, gaps
