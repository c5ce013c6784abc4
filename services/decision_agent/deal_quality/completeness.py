"""Data completeness: stage-aware required fields (MEDDPICC coverage) + consistency checks.

Each required field is worth ``required_fields_points / number of required fields`` for the
deal's stage, earned in proportion to its MEDDPICC status credit; each consistency check is
worth its stated points. A field that is missing or unknown never earns more than a present
one, so filling a field never lowers the score.
"""

from __future__ import annotations

from typing import NamedTuple

from contracts.analysis import ScoreDetail, ScoreFactor
from contracts.common import Evidence
from services.decision_agent import trusted
from services.decision_agent.deal_quality.context import DealContext
from services.decision_agent.deal_quality.registry import (
    CONSISTENCY_CHECKS,
    CheckOutcome,
    Params,
    consistency_check,
)
from services.decision_agent.deal_quality.rule_models import (
    MEDDPICC_FIELDS,
    CompletenessRules,
    StageRules,
    band_for,
)


@consistency_check("close_date_not_past")
def close_date_not_past(ctx: DealContext, _: Params) -> CheckOutcome:
    close = ctx.opportunity.close_date
    evidence = (ctx.opportunity_evidence("close_date"),)
    if close is None:
        return CheckOutcome(False, "no close date", evidence)
    if not ctx.is_closed and close < ctx.as_of:
        return CheckOutcome(False, f"open deal with close date {close} in the past", evidence)
    return CheckOutcome(True, f"close date {close}", evidence)


class ProbabilityTolerance(Params):
    tolerance: float = 10


@consistency_check("probability_matches_stage", ProbabilityTolerance)
def probability_matches_stage(ctx: DealContext, p: ProbabilityTolerance) -> CheckOutcome:
    probability = ctx.opportunity.probability
    stage = ctx.stage_rule
    evidence = (ctx.opportunity_evidence("probability"), ctx.opportunity_evidence("stage_name"))
    if probability is None or stage is None:
        return CheckOutcome(False, "probability or stage unknown", evidence)
    if abs(probability - stage.probability) > p.tolerance:
        return CheckOutcome(
            False,
            f"probability {probability:g} vs {stage.probability:g} for {stage.name}",
            evidence,
        )
    return CheckOutcome(True, f"probability {probability:g} matches {stage.name}", evidence)


@consistency_check("amount_positive")
def amount_positive(ctx: DealContext, _: Params) -> CheckOutcome:
    amount = ctx.opportunity.amount
    evidence = (ctx.opportunity_evidence("amount"),)
    if amount is None or amount <= 0:
        return CheckOutcome(False, "amount missing or not positive", evidence)
    return CheckOutcome(True, f"amount ${amount:,.0f}", evidence)


@consistency_check("has_contact")
def has_contact(ctx: DealContext, _: Params) -> CheckOutcome:
    count = len(ctx.dataset.contacts)
    return CheckOutcome(count > 0, f"{count} contact(s) on the account")


@consistency_check("has_owner")
def has_owner(ctx: DealContext, _: Params) -> CheckOutcome:
    owner = ctx.opportunity.owner_id
    evidence = (ctx.opportunity_evidence("owner_id"),)
    return CheckOutcome(bool(owner), "owner set" if owner else "no owner", evidence)


def required_fields(stages: StageRules, stage_index: int | None, base: list[str]) -> list[str]:
    """Base fields + MEDDPICC fields the stage (and all before it) require."""
    last = 0 if stage_index is None else stage_index
    fields = list(base)
    for stage in stages.stages[: last + 1]:
        fields.extend(f for f in stage.adds_meddpicc if f not in fields)
    return fields


def _field_credit(ctx: DealContext, name: str) -> tuple[float, str, Evidence]:
    """Credit of a required field that is not a MEDDPICC field (those: ctx.meddpicc_credit)."""
    value = getattr(ctx.opportunity, name)
    evidence = ctx.opportunity_evidence(name)
    present = value is not None and (not isinstance(value, str) or bool(value.strip()))
    if name == "amount" and present and value <= 0:
        present = False
    return (1.0 if present else 0.0), f"{name} {'present' if present else 'missing'}", evidence


class _StagePlan(NamedTuple):
    """What a stage requires, with everything that does not depend on the deal worked out."""

    per_field: float
    possible: float
    fields: tuple[tuple[str, str, bool], ...]  # (factor label, field, is a MEDDPICC field)


class CompiledCompleteness:
    """Completeness rules with check parameters resolved and required fields per stage."""

    def __init__(self, rules: CompletenessRules, stages: StageRules) -> None:
        self.rules = rules
        self.plans: dict[int | None, _StagePlan] = {}
        for index in [None, *range(len(stages.stages))]:
            fields = required_fields(stages, index, rules.base_required_fields)
            per_field = rules.required_fields_points / len(fields) if fields else 0.0
            self.plans[index] = _StagePlan(
                per_field,
                round(per_field, 4),
                tuple((f"required:{name}", name, name in MEDDPICC_FIELDS) for name in fields),
            )
        self.checks = tuple(
            (
                f"consistency:{rule.check}",
                rule.points,
                CONSISTENCY_CHECKS[rule.check].fn,
                CONSISTENCY_CHECKS[rule.check].params.model_validate(rule.params),
            )
            for rule in rules.consistency
        )

    def score(self, ctx: DealContext) -> ScoreDetail:
        return score_completeness(ctx, self)


def score_completeness(ctx: DealContext, compiled: CompiledCompleteness) -> ScoreDetail:
    rules = compiled.rules
    factors: list[ScoreFactor] = []
    earned: list[float] = []
    per_field, possible, fields = compiled.plans[ctx.stage_index]
    for label, name, is_meddpicc in fields:
        if is_meddpicc:
            credit, explanation, evidence = ctx.meddpicc_credit(name)
        else:
            credit, explanation, evidence = _field_credit(ctx, name)
        points = possible if credit >= 1.0 else round(per_field * credit, 4)
        earned.append(points)
        factors.append(trusted.score_factor(label, points, possible, explanation, [evidence]))
    for label, check_points, fn, params in compiled.checks:
        outcome = fn(ctx, params)
        points = check_points if outcome.passed else 0.0
        earned.append(points)
        factors.append(
            trusted.score_factor(
                label, points, check_points, outcome.explanation, [*outcome.evidence]
            )
        )
    score = max(0, min(100, round(sum(earned) / rules.total * 100)))
    return trusted.score_detail(score, band_for(rules.bands, score), factors)
