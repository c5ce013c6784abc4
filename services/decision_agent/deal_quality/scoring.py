"""Evaluate a points rubric (rubric YAML + factor measures) into a ScoreDetail."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from contracts.analysis import ScoreDetail, ScoreFactor
from services.decision_agent import trusted
from services.decision_agent.deal_quality.context import DealContext
from services.decision_agent.deal_quality.registry import MEASURES, Measure, MeasureFn, Params
from services.decision_agent.deal_quality.rule_models import Band, Rubric, band_for


@dataclass(frozen=True)
class CompiledFactor:
    name: str
    category: str
    label: str  # "category.factor", as shown in the breakdown
    gap_name: str  # "score.factor", as named in the data-gap flag
    possible: float
    measure: Measure
    params: Params
    slot: int  # MeasureSlots number of (measure, params)


class MeasureSlots:
    """Numbers each distinct (measure, parameters) pair across every rubric of a rules load.

    Several rubrics score the same thing (icp_fit and technical_fit both rate the cloud
    provider with the same parameters): a measure is a pure function of the deal and its
    parameters, and its outcome is immutable, so each pair is evaluated once per deal and its
    outcome shared (DealContext.outcomes, keyed by slot).
    """

    def __init__(self) -> None:
        self._pairs: list[tuple[str, Params]] = []

    def slot(self, measure: str, params: Params) -> int:
        for index, (name, known) in enumerate(self._pairs):
            if name == measure and known == params:
                return index
        self._pairs.append((measure, params))
        return len(self._pairs) - 1


@dataclass(frozen=True)
class CompiledRubric:
    """A rubric with measures and parameters resolved once at start-up."""

    score: str
    total: float
    bands: tuple[Band, ...]
    factors: tuple[CompiledFactor, ...]

    @classmethod
    def from_rubric(cls, rubric: Rubric, slots: MeasureSlots | None = None) -> CompiledRubric:
        """``slots`` is shared by the rubrics of one rules load (a fresh one if not given)."""
        slots = slots or MeasureSlots()
        factors = []
        for category in rubric.categories:
            for factor in category.factors:
                measure = MEASURES[factor.measure]
                params = measure.params.model_validate(factor.params)
                factors.append(
                    CompiledFactor(
                        name=factor.factor,
                        category=category.name,
                        label=f"{category.name}.{factor.factor}",
                        gap_name=f"{rubric.score}.{factor.factor}",
                        possible=factor.points,
                        measure=measure,
                        params=params,
                        slot=slots.slot(measure.name, params),
                    )
                )
        return cls(rubric.score, rubric.total, tuple(rubric.bands), tuple(factors))

    @cached_property
    def _plan(self) -> tuple[tuple[str, str, float, int, MeasureFn, Params], ...]:
        """The factors as plain tuples: the hot loop unpacks them instead of looking up
        attributes."""
        return tuple(
            (f.label, f.gap_name, f.possible, f.slot, f.measure.fn, f.params) for f in self.factors
        )

    def evaluate(self, ctx: DealContext) -> tuple[ScoreDetail, list[tuple[str, str]]]:
        """The score detail and the data gaps (factor, missing item) met on the way."""
        factors: list[ScoreFactor] = []
        gaps: list[tuple[str, str]] = []
        earned = 0.0
        outcomes = ctx.outcomes
        for label, gap_name, possible, slot, fn, params in self._plan:
            outcome = outcomes.get(slot)
            if outcome is None:
                outcome = outcomes[slot] = fn(ctx, params)
            fraction, explanation, evidence, gap = outcome
            if fraction <= 0.0:
                points = 0.0
            elif fraction >= 1.0:
                points = possible
            else:
                points = round(possible * fraction, 4)
            earned += points
            if gap:
                gaps.append((gap_name, gap))
            factors.append(trusted.score_factor(label, points, possible, explanation, [*evidence]))
        score = max(0, min(100, round(earned / self.total * 100)))
        detail = trusted.score_detail(score, band_for(self.bands, score), factors)
        return detail, gaps
