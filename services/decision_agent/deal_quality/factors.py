"""Factor measures: the code behind rubric factors (the rubric YAML names them by ``measure``).

A measure returns the share of the factor's points earned (0..1), an explanation and its
evidence. When the data it needs is missing it returns 0 with a ``gap`` naming what was
missing, so the analyzer can raise a data-gap flag instead of failing.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Literal

from contracts.common import Evidence
from services.decision_agent import trusted
from services.decision_agent.conversation.extractor import MentionKind
from services.decision_agent.deal_quality.context import DealContext
from services.decision_agent.deal_quality.registry import FactorOutcome, Params, measure

MeddpiccField = Literal[
    "metrics",
    "economic_buyer",
    "decision_criteria",
    "decision_making_process",
    "paper_process",
    "identify_pain",
    "champion",
    "competition",
]
Requirement = Literal["latency", "concurrency", "data_volume", "integrations"]
ObjectionClass = Literal[
    "happy_with_current_tool",
    "no_budget",
    "no_time",
    "lock_in",
    "not_technical_enough",
    "performance_not_a_priority",
]


def _no_calls(ctx: DealContext) -> FactorOutcome | None:
    if ctx.signals.calls:
        return None
    return FactorOutcome(0.0, "no customer calls recorded", gap="no_customer_calls")


def _mention_evidence(ctx: DealContext, kind: MentionKind, label: str) -> tuple[Evidence, ...]:
    return tuple(m.evidence for m in ctx.signals.of_kind(kind, label)[:3])


# ------------------------------------------------------------------ company


class EmployeeRange(Params):
    min_employees: int = 50
    max_employees: int = 5000
    sweet_min: int = 200
    sweet_max: int = 1000
    in_range_credit: float = 0.6


@measure("employee_range", EmployeeRange)
def employee_range(ctx: DealContext, p: EmployeeRange) -> FactorOutcome:
    count = ctx.account.employee_count
    evidence = (ctx.account_evidence("employee_count"),)
    if count is None:
        return FactorOutcome(
            0.0, "employee count unknown", evidence, gap=ctx.account_gap("employee_count")
        )
    if p.sweet_min <= count <= p.sweet_max:
        return FactorOutcome(1.0, f"{count} employees: in the sweet spot", evidence)
    if p.min_employees <= count <= p.max_employees:
        return FactorOutcome(p.in_range_credit, f"{count} employees: in range", evidence)
    return FactorOutcome(
        0.0, f"{count} employees: outside {p.min_employees}-{p.max_employees}", evidence
    )


class IndustryFit(Params):
    in_scope: list[str]
    out_of_scope: list[str]
    digital_native_markers: list[str] = ["digital", "online", "e-commerce", "saas", "internet"]
    other_credit: float = 0.4
    digital_native_credit: float = 0.7

    # Derived once per rules load. cached_property, not PrivateAttr: reading a pydantic
    # private attribute goes through __getattr__ (~2.4 us), this is a plain attribute read.
    @cached_property
    def in_scope_lowered(self) -> frozenset[str]:
        return frozenset(i.lower() for i in self.in_scope)

    @cached_property
    def out_of_scope_lowered(self) -> frozenset[str]:
        return frozenset(i.lower() for i in self.out_of_scope)


@measure("industry_fit", IndustryFit)
def industry_fit(ctx: DealContext, p: IndustryFit) -> FactorOutcome:
    industry = (ctx.account.sf_industry or "").strip()
    evidence = (ctx.account_evidence("sf_industry"),)
    if not industry:
        return FactorOutcome(0.0, "industry unknown", evidence, gap=ctx.account_gap("sf_industry"))
    lowered = industry.lower()
    if lowered in p.in_scope_lowered:
        return FactorOutcome(1.0, f"{industry} is an in-scope industry", evidence)
    if lowered in p.out_of_scope_lowered:
        sub = (ctx.account.sf_sub_industry or "").lower()
        if any(marker in sub for marker in p.digital_native_markers):
            return FactorOutcome(p.digital_native_credit, f"{industry}, digital native", evidence)
        return FactorOutcome(0.0, f"{industry} is out of scope", evidence)
    return FactorOutcome(p.other_credit, f"{industry} is neither in nor out of scope", evidence)


class CloudProvider(Params):
    preferred: list[str] = ["AWS"]
    other_credit: float = 0.5

    @cached_property
    def preferred_lowered(self) -> frozenset[str]:
        return frozenset(c.lower() for c in self.preferred)


@measure("cloud_provider", CloudProvider)
def cloud_provider(ctx: DealContext, p: CloudProvider) -> FactorOutcome:
    cloud = (ctx.account.cloud_provider or "").strip()
    evidence = (ctx.account_evidence("cloud_provider"),)
    if not cloud:
        return FactorOutcome(
            0.0, "cloud provider unknown", evidence, gap=ctx.account_gap("cloud_provider")
        )
    if cloud.lower() in p.preferred_lowered:
        return FactorOutcome(1.0, f"runs on {cloud} (preferred)", evidence)
    return FactorOutcome(p.other_credit, f"runs on {cloud}", evidence)


class RevenuePerEmployee(Params):
    strong_usd: float = 200_000
    moderate_usd: float = 100_000
    moderate_credit: float = 0.5
    weak_credit: float = 0.2


@measure("revenue_per_employee", RevenuePerEmployee)
def revenue_per_employee(ctx: DealContext, p: RevenuePerEmployee) -> FactorOutcome:
    revenue, count = ctx.account.annual_revenue_usd, ctx.account.employee_count
    evidence = (ctx.account_evidence("annual_revenue_usd"),)
    if not revenue or not count:
        return FactorOutcome(
            0.0, "revenue or headcount unknown", evidence, gap=ctx.account_gap("annual_revenue_usd")
        )
    per_head = revenue / count
    if per_head >= p.strong_usd:
        return FactorOutcome(1.0, f"${per_head:,.0f} revenue per employee", evidence)
    credit = p.moderate_credit if per_head >= p.moderate_usd else p.weak_credit
    return FactorOutcome(credit, f"${per_head:,.0f} revenue per employee", evidence)


# ------------------------------------------------------------------ technical


class LatencyRequirement(Params):
    max_latency_ms: float = 1000
    mention_credit: float = 0.7
    slow_credit: float = 0.3


@measure("latency_requirement", LatencyRequirement)
def latency_requirement(ctx: DealContext, p: LatencyRequirement) -> FactorOutcome:
    required = ctx.opportunity.latency_requirement_ms
    if required is not None:
        evidence = (ctx.opportunity_evidence("latency_requirement_ms"),)
        if required <= p.max_latency_ms:
            return FactorOutcome(1.0, f"needs {required:g} ms queries (sub-second)", evidence)
        return FactorOutcome(p.slow_credit, f"needs {required:g} ms queries only", evidence)
    mentions = _mention_evidence(ctx, MentionKind.TECHNICAL_REQUIREMENT, "latency")
    if mentions:
        return FactorOutcome(p.mention_credit, "latency discussed on calls", mentions)
    return FactorOutcome(0.0, "no latency requirement captured", gap="latency_requirement_ms")


class ScaleRequirement(Params):
    min_data_tb: float = 1.0
    min_concurrent_users: int = 50
    min_qps: float = 100
    below_credit: float = 0.2
    mention_credit: float = 0.5


@measure("scale_requirement", ScaleRequirement)
def scale_requirement(ctx: DealContext, p: ScaleRequirement) -> FactorOutcome:
    opp = ctx.opportunity
    checks = [
        ("expected_data_volume_tb", opp.expected_data_volume_tb, p.min_data_tb),
        ("expected_concurrent_users", opp.expected_concurrent_users, p.min_concurrent_users),
        ("expected_qps", opp.expected_qps, p.min_qps),
    ]
    known = [(name, value, floor) for name, value, floor in checks if value is not None]
    met = [(name, value) for name, value, floor in known if value >= floor]
    if met:
        evidence = tuple(ctx.opportunity_evidence(name) for name, _ in met)
        return FactorOutcome(1.0, ", ".join(f"{n}={v:g}" for n, v in met), evidence)
    if known:
        evidence = tuple(ctx.opportunity_evidence(name) for name, _, _ in known)
        return FactorOutcome(p.below_credit, "scale below the technical-fit thresholds", evidence)
    mentions = _mention_evidence(ctx, MentionKind.TECHNICAL_REQUIREMENT, "data_volume")
    mentions += _mention_evidence(ctx, MentionKind.TECHNICAL_REQUIREMENT, "concurrency")
    if mentions:
        return FactorOutcome(p.mention_credit, "scale discussed on calls", mentions)
    return FactorOutcome(0.0, "no scale requirement captured", gap="expected_data_volume_tb")


class ConcurrencyFit(Params):
    min_concurrent_users: int = 50
    min_qps: float = 100
    below_credit: float = 0.4
    mention_credit: float = 0.7


@measure("concurrency_fit", ConcurrencyFit)
def concurrency_fit(ctx: DealContext, p: ConcurrencyFit) -> FactorOutcome:
    opp = ctx.opportunity
    users, qps = opp.expected_concurrent_users, opp.expected_qps
    if users is not None or qps is not None:
        evidence = tuple(
            ctx.opportunity_evidence(name)
            for name, value in (("expected_concurrent_users", users), ("expected_qps", qps))
            if value is not None
        )
        if (users or 0) >= p.min_concurrent_users or (qps or 0) >= p.min_qps:
            return FactorOutcome(1.0, f"{users} concurrent users / {qps} QPS", evidence)
        return FactorOutcome(p.below_credit, f"only {users} users / {qps} QPS", evidence)
    mentions = _mention_evidence(ctx, MentionKind.TECHNICAL_REQUIREMENT, "concurrency")
    if mentions:
        return FactorOutcome(p.mention_credit, "concurrency discussed on calls", mentions)
    return FactorOutcome(
        0.0, "no concurrency requirement captured", gap="expected_concurrent_users"
    )


class DataVolumeFit(Params):
    min_data_tb: float = 1.0
    mention_credit: float = 0.6


@measure("data_volume_fit", DataVolumeFit)
def data_volume_fit(ctx: DealContext, p: DataVolumeFit) -> FactorOutcome:
    volume = ctx.opportunity.expected_data_volume_tb
    if volume is not None:
        evidence = (ctx.opportunity_evidence("expected_data_volume_tb"),)
        if volume >= p.min_data_tb:
            return FactorOutcome(1.0, f"{volume:g} TB of data", evidence)
        return FactorOutcome(0.0, f"{volume:g} TB is below {p.min_data_tb:g} TB", evidence)
    mentions = _mention_evidence(ctx, MentionKind.TECHNICAL_REQUIREMENT, "data_volume")
    if mentions:
        return FactorOutcome(p.mention_credit, "data volume discussed on calls", mentions)
    return FactorOutcome(0.0, "data volume unknown", gap="expected_data_volume_tb")


class RequirementCaptured(Params):
    requirement: Requirement
    field: str | None = None


@measure("requirement_captured", RequirementCaptured)
def requirement_captured(ctx: DealContext, p: RequirementCaptured) -> FactorOutcome:
    if p.field and getattr(ctx.opportunity, p.field, None) is not None:
        return FactorOutcome(1.0, f"{p.field} recorded", (ctx.opportunity_evidence(p.field),))
    mentions = _mention_evidence(ctx, MentionKind.TECHNICAL_REQUIREMENT, p.requirement)
    if mentions:
        return FactorOutcome(1.0, f"{p.requirement} discussed on calls", mentions)
    return _no_calls(ctx) or FactorOutcome(0.0, f"{p.requirement} never discussed")


class MentionCount(Params):
    requirement: Requirement = "integrations"
    full_at: int = 2


@measure("requirement_mentions", MentionCount)
def requirement_mentions(ctx: DealContext, p: MentionCount) -> FactorOutcome:
    mentions = ctx.signals.of_kind(MentionKind.TECHNICAL_REQUIREMENT, p.requirement)
    calls = {m.call_id for m in mentions}
    if not mentions:
        return _no_calls(ctx) or FactorOutcome(0.0, f"{p.requirement} never discussed")
    evidence = tuple(m.evidence for m in mentions[:3])
    fraction = min(1.0, len(calls) / p.full_at)
    return FactorOutcome(fraction, f"{p.requirement} discussed on {len(calls)} call(s)", evidence)


class PainSignal(Params):
    keywords: list[str]
    other_pain_credit: float = 0.6

    @cached_property
    def keywords_lowered(self) -> tuple[str, ...]:
        return tuple(k.lower() for k in self.keywords)


@measure("pain_signal", PainSignal)
def pain_signal(ctx: DealContext, p: PainSignal) -> FactorOutcome:
    credit, explanation, evidence = ctx.meddpicc_credit("identify_pain")
    text = (ctx.opportunity.identify_pain or "").lower()
    if credit and not any(k in text for k in p.keywords_lowered):
        credit *= p.other_pain_credit
        explanation += " (not about cost or performance)"
    return FactorOutcome(credit, explanation, (evidence,))


class NoObjection(Params):
    objection: ObjectionClass


@measure("no_objection", NoObjection)
def no_objection(ctx: DealContext, p: NoObjection) -> FactorOutcome:
    found = _mention_evidence(ctx, MentionKind.OBJECTION, p.objection)
    if found:
        return FactorOutcome(0.0, f"objection raised: {p.objection}", found)
    return _no_calls(ctx) or FactorOutcome(1.0, f"no {p.objection} objection on calls")


# ------------------------------------------------------------------ business / CRM


class Meddpicc(Params):
    field: MeddpiccField


@measure("meddpicc", Meddpicc)
def meddpicc(ctx: DealContext, p: Meddpicc) -> FactorOutcome:
    credit, explanation, evidence = ctx.meddpicc_credit(p.field)
    return FactorOutcome(credit, explanation, (evidence,))


class BudgetConfirmed(Params):
    objection_penalty: float = 0.5


@measure("budget_confirmed", BudgetConfirmed)
def budget_confirmed(ctx: DealContext, p: BudgetConfirmed) -> FactorOutcome:
    credit, explanation, evidence = ctx.meddpicc_credit("economic_buyer")
    objections = _mention_evidence(ctx, MentionKind.OBJECTION, "no_budget")
    if objections:
        credit *= p.objection_penalty
        explanation += "; 'no budget' raised on a call"
    return FactorOutcome(credit, explanation, (evidence, *objections))


class CompetitivePosition(Params):
    unassessed_competitor_credit: float = 0.5


@measure("competitive_position", CompetitivePosition)
def competitive_position(ctx: DealContext, p: CompetitivePosition) -> FactorOutcome:
    credit, explanation, evidence = ctx.meddpicc_credit("competition")
    mentions = tuple(m.evidence for m in ctx.signals.of_kind(MentionKind.COMPETITOR)[:3])
    if mentions and credit < 1.0:
        credit *= p.unassessed_competitor_credit
        explanation += "; competitor named on calls"
    return FactorOutcome(credit, explanation, (evidence, *mentions))


class CloseTimeline(Params):
    horizon_days: int = 180
    beyond_credit: float = 0.5


@measure("close_timeline", CloseTimeline)
def close_timeline(ctx: DealContext, p: CloseTimeline) -> FactorOutcome:
    close = ctx.opportunity.close_date
    evidence = (ctx.opportunity_evidence("close_date"),)
    if close is None:
        return FactorOutcome(0.0, "no close date", evidence, gap="close_date")
    if ctx.is_closed:
        return FactorOutcome(1.0, f"closed (close date {close})", evidence)
    days = (close - ctx.as_of).days
    if days < 0:
        return FactorOutcome(0.0, f"close date {close} is {-days} days in the past", evidence)
    if days <= p.horizon_days:
        return FactorOutcome(1.0, f"closes in {days} days", evidence)
    return FactorOutcome(p.beyond_credit, f"closes in {days} days (beyond horizon)", evidence)


class BusinessImpact(Params):
    min_acv_usd: float = 100_000
    metrics_weight: float = 0.5


@measure("business_impact", BusinessImpact)
def business_impact(ctx: DealContext, p: BusinessImpact) -> FactorOutcome:
    credit, explanation, evidence = ctx.meddpicc_credit("metrics")
    acv = ctx.opportunity.acv
    acv_part = 1.0 if acv is not None and acv >= p.min_acv_usd else 0.0
    acv_text = f"ACV ${acv:,.0f}" if acv is not None else "ACV unknown"
    fraction = p.metrics_weight * credit + (1 - p.metrics_weight) * acv_part
    return FactorOutcome(
        fraction, f"{explanation}; {acv_text}", (evidence, ctx.opportunity_evidence("amount"))
    )


class FieldPresent(Params):
    field: str


@measure("field_present", FieldPresent)
def field_present(ctx: DealContext, p: FieldPresent) -> FactorOutcome:
    value = getattr(ctx.opportunity, p.field, None)
    evidence = (ctx.opportunity_evidence(p.field),)
    if value is None or (isinstance(value, str) and not value.strip()):
        return FactorOutcome(0.0, f"{p.field} is empty", evidence, gap=p.field)
    return FactorOutcome(1.0, f"{p.field} recorded", evidence)


class StageReached(Params):
    stage: str


@measure("stage_reached", StageReached)
def stage_reached(ctx: DealContext, p: StageReached) -> FactorOutcome:
    evidence = (ctx.opportunity_evidence("stage_name"),)
    if ctx.reached(p.stage):
        return FactorOutcome(1.0, f"reached {p.stage}", evidence)
    return FactorOutcome(0.0, f"has not reached {p.stage}", evidence)


# ------------------------------------------------------------------ engagement


class RoleOnCalls(Params):
    role: Literal["economic_buyer", "executive", "technical", "procurement"]
    contact_only_credit: float = 0.4


@measure("role_on_calls", RoleOnCalls)
def role_on_calls(ctx: DealContext, p: RoleOnCalls) -> FactorOutcome:
    present = ctx.signals.with_role(p.role)
    if present:
        return FactorOutcome(
            1.0,
            f"{p.role} on {len({s.call_id for s in present})} call(s)",
            tuple(s.evidence for s in present[:3]),
        )
    gap = _no_calls(ctx)
    if gap is not None:
        return gap
    return FactorOutcome(0.0, f"no {p.role} on any customer call")


class FullAt(Params):
    full_at: float = 3


@measure("customer_call_count", FullAt)
def customer_call_count(ctx: DealContext, p: FullAt) -> FactorOutcome:
    calls = ctx.signals.calls
    if not calls:
        return FactorOutcome(0.0, "no customer calls", gap="no_customer_calls")
    evidence = tuple(ctx.call_evidence(c) for c in calls[-3:])
    return FactorOutcome(
        min(1.0, len(calls) / p.full_at), f"{len(calls)} customer call(s)", evidence
    )


class RecentCalls(Params):
    window_days: int = 30
    full_at: float = 2


@measure("recent_call_count", RecentCalls)
def recent_call_count(ctx: DealContext, p: RecentCalls) -> FactorOutcome:
    gap = _no_calls(ctx)
    if gap is not None:
        return gap
    recent = [c for c in ctx.signals.calls if (ctx.as_of - c.start_ts.date()).days <= p.window_days]
    evidence = tuple(ctx.call_evidence(c) for c in recent[-3:])
    text = f"{len(recent)} customer call(s) in the last {p.window_days} days"
    return FactorOutcome(min(1.0, len(recent) / p.full_at), text, evidence)


class CallRecency(Params):
    full_days: int = 14
    partial_days: int = 30
    partial_credit: float = 0.5


@measure("call_recency", CallRecency)
def call_recency(ctx: DealContext, p: CallRecency) -> FactorOutcome:
    gap = _no_calls(ctx)
    if gap is not None:
        return gap
    last = ctx.signals.calls[-1]
    days = (ctx.as_of - last.start_ts.date()).days
    evidence = (ctx.call_evidence(last),)
    if days <= p.full_days:
        return FactorOutcome(1.0, f"last customer call {days} days ago", evidence)
    if days <= p.partial_days:
        return FactorOutcome(p.partial_credit, f"last customer call {days} days ago", evidence)
    return FactorOutcome(0.0, f"last customer call {days} days ago", evidence)


@measure("attendance", FullAt)
def attendance(ctx: DealContext, p: FullAt) -> FactorOutcome:
    gap = _no_calls(ctx)
    if gap is not None:
        return gap
    # A presence is one attendee on one call, so attendees summed over calls is their count.
    average = len(ctx.signals.stakeholders) / len(ctx.signals.calls)
    return FactorOutcome(
        min(1.0, average / p.full_at), f"{average:.1f} customer attendees per call"
    )


@measure("distinct_customer_participants", FullAt)
def distinct_customer_participants(ctx: DealContext, p: FullAt) -> FactorOutcome:
    gap = _no_calls(ctx)
    if gap is not None:
        return gap
    people = len({s.email for s in ctx.signals.stakeholders})
    evidence = tuple(s.evidence for s in ctx.signals.stakeholders[:3])
    return FactorOutcome(
        min(1.0, people / p.full_at), f"{people} customer participant(s)", evidence
    )


@measure("stakeholder_expansion", FullAt)
def stakeholder_expansion(ctx: DealContext, p: FullAt) -> FactorOutcome:
    gap = _no_calls(ctx)
    if gap is not None:
        return gap
    first_call = ctx.signals.calls[0].call_id
    first = {s.email for s in ctx.signals.stakeholders if s.call_id == first_call}
    added = list(dict.fromkeys(s.email for s in ctx.signals.stakeholders if s.email not in first))
    shown = set(added[:3])
    evidence = tuple(s.evidence for s in ctx.signals.stakeholders if s.email in shown)[:3]
    return FactorOutcome(
        min(1.0, len(added) / p.full_at),
        f"{len(added)} new stakeholder(s) since the first call",
        evidence,
    )


@measure("contact_count", FullAt)
def contact_count(ctx: DealContext, p: FullAt) -> FactorOutcome:
    contacts = ctx.dataset.contacts
    if not contacts:
        return FactorOutcome(0.0, "no contacts on the account", gap="no_contacts")
    evidence = tuple(_contact_evidence(c.contact_id, c.title) for c in contacts[:3])
    return FactorOutcome(
        min(1.0, len(contacts) / p.full_at), f"{len(contacts)} contact(s)", evidence
    )


@lru_cache(maxsize=65_536)
def _contact_evidence(contact_id: str, title: str | None) -> Evidence:
    return trusted.evidence("contact_d", contact_id, "title", value=title)
