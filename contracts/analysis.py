"""Analysis results with recommendations (topic `revops.decisions`).

Seed: "Data Flow & Transformations", stage 3. `scores` keeps the seed's flat name -> 0..100
map; `score_details` carries the explainable breakdown behind each score.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from contracts.common import AnalysisType, Contract, Evidence, Priority, Severity, Subject


class InsightCategory(StrEnum):
    DEAL_QUALITY = "deal_quality"
    CONSUMPTION_PATTERN = "consumption_pattern"
    CHURN_RISK = "churn_risk"
    PIPELINE_HEALTH = "pipeline_health"
    GROWTH_OPPORTUNITY = "growth_opportunity"


class ScoreFactor(Contract):
    factor: str
    points: float
    possible: float
    explanation: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)


class ScoreDetail(Contract):
    score: int = Field(ge=0, le=100)
    band: str
    factors: list[ScoreFactor] = Field(default_factory=list)


class FlagType(StrEnum):
    RISK = "risk"
    OPPORTUNITY = "opportunity"


class Flag(Contract):
    """A finding. `category`/`insight_type` say which insight it becomes (docs/domain.md §5)."""

    type: FlagType
    severity: Severity
    description: str
    code: str = Field(description="Stable machine name, e.g. zero_customer_calls")
    category: InsightCategory
    insight_type: str
    confidence: float = Field(default=0.8, ge=0, le=1)
    evidence: list[Evidence] = Field(default_factory=list)
    event_id: str | None = Field(
        default=None,
        description="The event this flag reports, stable across analyses (e.g. a usage "
        "anomaly: account:metric:direction:onset date). The same id again means the same "
        "event; it is reported again only with a higher severity (it got worse).",
    )


class Recommendation(Contract):
    id: str
    priority: Priority
    action: str
    description: str
    evidence: list[Evidence] = Field(default_factory=list)
    assignee: str
    based_on: list[str] = Field(default_factory=list, description="Flag codes it answers")


class CallInsightKind(StrEnum):
    OBJECTION = "objection"
    COMPETITOR = "competitor"
    TECHNICAL_REQUIREMENT = "technical_requirement"
    STAKEHOLDER = "stakeholder"
    NEXT_STEP = "next_step"


class CallInsight(Contract):
    """Something a language model read in a customer call, with the verbatim quote that
    shows it. Only grounded insights are published: the call exists in the dataset and the
    quote occurs in its text (whitespace and case aside)."""

    kind: CallInsightKind
    label: str = Field(description="Class: no_budget, snowflake, latency, economic_buyer, ...")
    call_id: str
    quote: str
    stakeholder: str | None = Field(
        default=None, description="Customer participant's e-mail (stakeholder insights)"
    )
    stance: str | None = Field(
        default=None, description="champion | supportive | neutral | skeptical | blocker"
    )
    detail: str | None = Field(default=None, description="E.g. the next step in a few words")


class ModelUse(Contract):
    """One prompt of one analysis: answered by the model, by the cache, or fallen back."""

    prompt: str
    prompt_version: str
    ref: str | None = Field(default=None, description="What the prompt was about, e.g. a call id")
    outcome: str = Field(description="model | cache | fallback")
    reason: str | None = Field(
        default=None,
        description="Why it fell back: breaker_open, budget_exhausted, timeout, throttled, ...",
    )
    tokens_in: int = 0
    tokens_out: int = 0
    grounding_rejections: int = Field(
        default=0,
        description="Claims of the answer dropped because the analysis or the calls do "
        "not support them",
    )


class AiProvenance(Contract):
    """What a language model contributed to an analysis. Scores never come from a model."""

    backend: str = Field(description="bedrock | openai | recorded")
    model_id: str
    parts: list[str] = Field(
        default_factory=list,
        description="Fields written by the model, e.g. summary, recommendations.rec-1.description,"
        " risk_mitigations, call_insights; everything else is the deterministic analysis",
    )
    replaced: dict[str, str] = Field(
        default_factory=dict, description="The deterministic text of each field the model rewrote"
    )
    uses: list[ModelUse] = Field(default_factory=list)
    knowledge: list[str] = Field(
        default_factory=list, description="Ids of the rules and playbooks given as context"
    )
    estimated_cost_usd: float = 0.0


class AnalysisBody(Contract):
    scores: dict[str, int] = Field(default_factory=dict)
    score_details: dict[str, ScoreDetail] = Field(default_factory=dict)
    flags: list[Flag] = Field(default_factory=list)


class AnalysisResults(Contract):
    """Seed stage 3 output."""

    request_id: str
    analysis_type: AnalysisType
    subject: Subject
    requested_at: datetime | None = Field(
        default=None, description="When the trigger was accepted (carried from the dataset)"
    )
    analysis_results: AnalysisBody
    recommendations: list[Recommendation] = Field(default_factory=list)
    conversation_topics: list[str] = Field(default_factory=list)
    risk_mitigations: list[str] = Field(default_factory=list)
    summary: str = ""
    call_insights: list[CallInsight] = Field(
        default_factory=list, description="Grounded call understanding by a language model"
    )
    ai: AiProvenance | None = Field(
        default=None, description="What a language model contributed (None: no model was used)"
    )
