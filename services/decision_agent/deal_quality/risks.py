"""Risk flags and positive signals: checks in code, named and parameterised by risks.yaml."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import NamedTuple

from contracts.analysis import Flag
from contracts.common import Evidence
from services.decision_agent import trusted
from services.decision_agent.conversation.extractor import MentionKind
from services.decision_agent.deal_quality.context import DealContext
from services.decision_agent.deal_quality.factors import Meddpicc, ObjectionClass
from services.decision_agent.deal_quality.registry import CHECKS, Check, Hit, Params, check
from services.decision_agent.deal_quality.rule_models import RiskRule, RiskRules


def _call_evidence(ctx: DealContext, index: int) -> Evidence:
    return ctx.call_evidence(ctx.signals.calls[index])


# ------------------------------------------------------------------ risks


@check("meddpicc_unassessed", Meddpicc, provides=("field", "status"))
def meddpicc_unassessed(ctx: DealContext, p: Meddpicc) -> Hit | None:
    text = getattr(ctx.opportunity, p.field)
    status = getattr(ctx.opportunity, f"{p.field}_status")
    empty = not (text and str(text).strip())
    if empty or status in ctx.stages.unassessed_statuses:
        evidence = ctx.opportunity_evidence(f"{p.field}_status", status)
        return Hit({"field": p.field, "status": status or "empty"}, (evidence,))
    return None


@check("competitor_named", provides=("competitors",))
def competitor_named(ctx: DealContext, _: Params) -> Hit | None:
    mentions = ctx.signals.of_kind(MentionKind.COMPETITOR)
    names = list(dict.fromkeys(m.label for m in mentions))
    evidence = [m.evidence for m in mentions]
    crm = (ctx.opportunity.competitors or "").strip()
    if crm:
        evidence.append(ctx.opportunity_evidence("competitors"))
        names.extend(n.strip().lower() for n in crm.replace(";", ",").split(",") if n.strip())
        names = list(dict.fromkeys(names))
    if not names:
        return None
    return Hit({"competitors": ", ".join(n.title() for n in names)}, tuple(evidence))


@check("zero_customer_calls")
def zero_customer_calls(ctx: DealContext, _: Params) -> Hit | None:
    if ctx.signals.calls:
        return None
    return Hit({}, (trusted.evidence("gong_call_f", ctx.opportunity.opportunity_id, value=0),))


class Window(Params):
    days: int = 30


@check("no_recent_customer_call", Window, provides=("days", "last_call_date"))
def no_recent_customer_call(ctx: DealContext, p: Window) -> Hit | None:
    if ctx.is_closed or not ctx.signals.calls:
        return None
    last = ctx.signals.calls[-1]
    if (ctx.as_of - last.start_ts.date()).days <= p.days:
        return None
    details = {"days": str(p.days), "last_call_date": last.start_ts.date().isoformat()}
    return Hit(details, (_call_evidence(ctx, -1),))


@check("close_date_slipped", provides=("close_date", "days"))
def close_date_slipped(ctx: DealContext, _: Params) -> Hit | None:
    close = ctx.opportunity.close_date
    if ctx.is_closed or close is None or close >= ctx.as_of:
        return None
    days = (ctx.as_of - close).days
    evidence = ctx.opportunity_evidence("close_date")
    return Hit({"close_date": close.isoformat(), "days": str(days)}, (evidence,))


@check("stage_regression", provides=("from_stage", "to_stage", "date"))
def stage_regression(ctx: DealContext, _: Params) -> Hit | None:
    hits: list[tuple[str, str, str]] = []
    evidence: list[Evidence] = []
    history = sorted(ctx.dataset.stage_history, key=lambda s: (s.started_at_ts, s.to_stage))
    for change in history:
        before = ctx.stage_position(change.from_stage) if change.from_stage else None
        after = ctx.stage_position(change.to_stage)
        if before is None or after is None or after >= before:
            continue
        if ctx.stages.stages[after].is_closed or ctx.stages.stages[before].is_closed:
            continue
        when = change.started_at_ts.date().isoformat()
        hits.append((change.from_stage or "", change.to_stage, when))
        evidence.append(
            trusted.evidence(
                "opportunity_stage_f",
                change.opportunity_id,
                "to_stage",
                when,
                f"{change.from_stage} -> {change.to_stage}",
            )
        )
    if not hits:
        return None
    from_stage, to_stage, when = hits[-1]
    return Hit({"from_stage": from_stage, "to_stage": to_stage, "date": when}, tuple(evidence))


class StageRole(Params):
    min_stage: str = "Negotiate"
    role: str = "economic_buyer"


@check("calls_contradict_stage", StageRole, provides=("stage", "role", "calls"))
def calls_contradict_stage(ctx: DealContext, p: StageRole) -> Hit | None:
    if ctx.is_closed or not ctx.reached(p.min_stage) or ctx.signals.with_role(p.role):
        return None
    evidence = [ctx.opportunity_evidence("stage_name")]
    evidence += [_call_evidence(ctx, i) for i in range(min(3, len(ctx.signals.calls)))]
    details = {
        "stage": ctx.opportunity.stage_name,
        "role": p.role.replace("_", " "),
        "calls": str(len(ctx.signals.calls)),
    }
    return Hit(details, tuple(evidence))


@check("no_contacts")
def no_contacts(ctx: DealContext, _: Params) -> Hit | None:
    if ctx.dataset.contacts or not ctx.has_account:  # no account: no_account says it
        return None
    return Hit({}, (trusted.evidence("contact_d", ctx.account.sf_account_id, value=0),))


class Objections(Params):
    objections: list[ObjectionClass]


@check("objection_raised", Objections, provides=("objections",))
def objection_raised(ctx: DealContext, p: Objections) -> Hit | None:
    found = [m for m in ctx.signals.of_kind(MentionKind.OBJECTION) if m.label in p.objections]
    if not found:
        return None
    labels = list(dict.fromkeys(m.label.replace("_", " ") for m in found))
    return Hit({"objections": ", ".join(labels)}, tuple(m.evidence for m in found))


class ScoreBelow(Params):
    score: str
    below: int


@check("score_below", ScoreBelow, provides=("score", "value"))
def score_below(ctx: DealContext, p: ScoreBelow) -> Hit | None:
    value = ctx.scores.get(p.score)
    if value is None or value >= p.below:
        return None
    evidence = trusted.evidence("analysis", field=p.score, value=value)
    return Hit({"score": p.score, "value": str(value)}, (evidence,))


class EmployeeBounds(Params):
    min_employees: int = 50
    max_employees: int = 5000


@check("employee_out_of_range", EmployeeBounds, provides=("employees",))
def employee_out_of_range(ctx: DealContext, p: EmployeeBounds) -> Hit | None:
    count = ctx.account.employee_count
    if count is None or p.min_employees <= count <= p.max_employees:
        return None
    return Hit({"employees": str(count)}, (ctx.account_evidence("employee_count"),))


class MinAcv(Params):
    min_acv_usd: float = 100_000


@check("acv_below", MinAcv, provides=("acv",))
def acv_below(ctx: DealContext, p: MinAcv) -> Hit | None:
    acv = ctx.opportunity.acv
    if acv is None or acv >= p.min_acv_usd:
        return None
    return Hit({"acv": f"${acv:,.0f}"}, (ctx.opportunity_evidence("amount"),))


class MinVolume(Params):
    min_tb: float = 1.0


@check("data_volume_below", MinVolume, provides=("volume_tb",))
def data_volume_below(ctx: DealContext, p: MinVolume) -> Hit | None:
    volume = ctx.opportunity.expected_data_volume_tb
    if volume is None or volume >= p.min_tb:
        return None
    return Hit({"volume_tb": f"{volume:g}"}, (ctx.opportunity_evidence("expected_data_volume_tb"),))


@check("no_account")
def no_account(ctx: DealContext, _: Params) -> Hit | None:
    if ctx.has_account:
        return None
    return Hit({}, (ctx.opportunity_evidence("sf_account_id", "none"),))


@check("product_not_in_catalog", provides=("product",))
def product_not_in_catalog(ctx: DealContext, _: Params) -> Hit | None:
    product = ctx.opportunity.product_id
    if not product or ctx.dataset.product is not None:
        return None
    return Hit({"product": product}, (ctx.opportunity_evidence("product_id"),))


@check("stale_in_stage", provides=("stage", "days", "since", "comparison"))
def stale_in_stage(ctx: DealContext, _: Params) -> Hit | None:
    """Longer in the stage than the stage model allows (from the data agent's medians of
    won deals, measured before the day of the analysis)."""
    time = ctx.dataset.time_in_stage
    if ctx.is_closed or time is None or time.days <= time.stale_after_days:
        return None
    if time.won_median_days is None:
        comparison = (
            f"too few won deals to compare ({time.won_deals}); stale after "
            f"{time.stale_after_days:g} days"
        )
    else:
        of = "" if time.segment == "all deals" else f" of {time.segment}"
        comparison = (
            f"won deals{of} spent a median of {time.won_median_days:.0f} days there "
            f"({time.won_deals} deals)"
        )
    evidence = trusted.evidence(
        "opportunity_stage_f",
        ctx.opportunity.opportunity_id,
        "to_stage",
        time.since.isoformat(),
        f"{time.stage} since {time.since.isoformat()}",
    )
    details = {
        "stage": time.stage,
        "days": str(time.days),
        "since": time.since.isoformat(),
        "comparison": comparison,
    }
    return Hit(details, (evidence,))


# ------------------------------------------------------------------ positive signals


class Titles(Params):
    titles: list[str] = ["cto", "vp", "vice president", "chief", "head of"]

    @cached_property
    def titles_lowered(self) -> tuple[str, ...]:
        return tuple(t.lower() for t in self.titles)


@check("champion_executive", Titles, provides=("champion",))
def champion_executive(ctx: DealContext, p: Titles) -> Hit | None:
    champion = (ctx.opportunity.champion or "").strip()
    if not champion:
        return None
    texts = [champion.lower()]
    texts += [
        (c.title or "").lower()
        for c in ctx.dataset.contacts
        if c.name and c.name.lower() in champion.lower()
    ]
    if not any(_has_word(text, w) for text in texts for w in p.titles_lowered):
        return None
    return Hit({"champion": champion}, (ctx.opportunity_evidence("champion"),))


def _has_word(text: str, word: str) -> bool:
    start = text.find(word)
    while start >= 0:
        end = start + len(word)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        start = text.find(word, start + 1)
    return False


class Keywords(Params):
    keywords: list[str]

    @cached_property
    def keywords_lowered(self) -> tuple[str, ...]:
        return tuple(k.lower() for k in self.keywords)


@check("pain_about", Keywords, provides=("pain",))
def pain_about(ctx: DealContext, p: Keywords) -> Hit | None:
    pain = (ctx.opportunity.identify_pain or "").strip()
    if not pain:
        return None
    lowered = pain.lower()
    if not any(k in lowered for k in p.keywords_lowered):
        return None
    return Hit({"pain": pain}, (ctx.opportunity_evidence("identify_pain"),))


class MoreThan(Params):
    more_than: int = 3


@check("many_customer_calls", MoreThan, provides=("calls",))
def many_customer_calls(ctx: DealContext, p: MoreThan) -> Hit | None:
    count = len(ctx.signals.calls)
    if count <= p.more_than:
        return None
    evidence = tuple(_call_evidence(ctx, i) for i in range(-min(3, count), 0))
    return Hit({"calls": str(count)}, evidence)


class AtLeastStage(Params):
    stage: str = "Negotiate"


@check("stage_at_least", AtLeastStage, provides=("stage",))
def stage_at_least(ctx: DealContext, p: AtLeastStage) -> Hit | None:
    stage = ctx.stage_rule
    if stage is None or (stage.is_closed and not stage.is_won) or not ctx.reached(p.stage):
        return None
    return Hit({"stage": ctx.opportunity.stage_name}, (ctx.opportunity_evidence("stage_name"),))


# ------------------------------------------------------------------ evaluation


class FiredRule(NamedTuple):
    """A rule whose check fired, with its flag (a tuple: cheaper than a frozen dataclass)."""

    rule: RiskRule
    flag: Flag
    hit: Hit


def compile_checks(rules: RiskRules) -> list[tuple[RiskRule, Check, Params]]:
    """Resolve each rule's check and parameters once, at start-up."""
    compiled = []
    for rule in rules.rules:
        found = CHECKS[rule.check]
        compiled.append((rule, found, found.params.model_validate(rule.params)))
    return compiled


def evaluate_risks(
    ctx: DealContext, compiled: Sequence[tuple[RiskRule, Check, Params]]
) -> list[FiredRule]:
    fired: list[FiredRule] = []
    for rule, found, params in compiled:
        hit = found.fn(ctx, params)
        if hit is None:
            continue
        flag = trusted.flag(
            rule.type,
            rule.severity,
            rule.description.format_map(hit.details),
            rule.code,
            rule.category,
            rule.insight_type,
            rule.confidence,
            [*hit.evidence],
        )
        fired.append(FiredRule(rule, flag, hit))
    return fired
