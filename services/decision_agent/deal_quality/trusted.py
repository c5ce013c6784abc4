"""Output models built from values our own code produced, without re-validating them.

A deal's result holds ~100 pydantic objects; validating each one costs about twice what
building it costs, and ``Model.model_construct`` is slower still (it walks every field in
Python; measured on this project's machine with pydantic 2.14: validate 2.2 us,
model_construct 5.0 us, these 1.1 us for a ScoreFactor). Every function here fills what
validation fills (``__dict__`` with every field, the fields marked as set as if each had been
passed, no extras, no private attributes), so a result built here equals its validated copy:
tests/unit/deal_quality/test_trusted.py proves ``Model.model_validate(result.model_dump())
== result`` (same repr, same JSON, strict validation passes) on many generated deals.

Callers pass values of the declared types (floats for float fields, enums for enum fields,
lists for list fields); nothing checks it here, the tests do.
"""

from __future__ import annotations

from typing import Any

from contracts.analysis import (
    AnalysisBody,
    AnalysisResults,
    Flag,
    FlagType,
    InsightCategory,
    Recommendation,
    ScoreDetail,
    ScoreFactor,
)
from contracts.common import AnalysisType, Evidence, Priority, Severity, Subject

# What BaseModel.model_construct does, written out per model: the hot path makes ~100 a deal.
_set = object.__setattr__
_new = object.__new__


def evidence(
    source: str,
    ref: str | None = None,
    field: str | None = None,
    date: str | None = None,
    value: Any = None,
    snippet: str | None = None,
) -> Evidence:
    """Evidence with every field set (as ``Evidence(source=..., ..., snippet=...)``)."""
    values = {
        "source": source,
        "ref": ref,
        "field": field,
        "date": date,
        "value": value,
        "snippet": snippet,
    }
    result = _new(Evidence)
    _set(result, "__dict__", values)
    _set(result, "__pydantic_fields_set__", set(values))
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result


def score_factor(
    factor: str,
    points: float,
    possible: float,
    explanation: str | None,
    evidence: list[Evidence],
) -> ScoreFactor:
    values = {
        "factor": factor,
        "points": points,
        "possible": possible,
        "explanation": explanation,
        "evidence": evidence,
    }
    result = _new(ScoreFactor)
    _set(result, "__dict__", values)
    _set(result, "__pydantic_fields_set__", set(values))
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result


def score_detail(score: int, band: str, factors: list[ScoreFactor]) -> ScoreDetail:
    values = {"score": score, "band": band, "factors": factors}
    result = _new(ScoreDetail)
    _set(result, "__dict__", values)
    _set(result, "__pydantic_fields_set__", set(values))
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result


def flag(
    type: FlagType,
    severity: Severity,
    description: str,
    code: str,
    category: InsightCategory,
    insight_type: str,
    confidence: float,
    evidence: list[Evidence],
) -> Flag:
    values = {
        "type": type,
        "severity": severity,
        "description": description,
        "code": code,
        "category": category,
        "insight_type": insight_type,
        "confidence": confidence,
        "evidence": evidence,
    }
    result = _new(Flag)
    _set(result, "__dict__", values)
    _set(result, "__pydantic_fields_set__", set(values))
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result


def recommendation(
    id: str,
    priority: Priority,
    action: str,
    description: str,
    evidence: list[Evidence],
    assignee: str,
    based_on: list[str],
) -> Recommendation:
    values = {
        "id": id,
        "priority": priority,
        "action": action,
        "description": description,
        "evidence": evidence,
        "assignee": assignee,
        "based_on": based_on,
    }
    result = _new(Recommendation)
    _set(result, "__dict__", values)
    _set(result, "__pydantic_fields_set__", set(values))
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result


def analysis_results(
    request_id: str,
    analysis_type: AnalysisType,
    subject: Subject,
    body: AnalysisBody,
    recommendations: list[Recommendation],
    conversation_topics: list[str],
    risk_mitigations: list[str],
    summary: str,
) -> AnalysisResults:
    """The result; ``requested_at`` stays unset (None), as when it is not passed."""
    values = {
        "request_id": request_id,
        "analysis_type": analysis_type,
        "subject": subject,
        "requested_at": None,
        "analysis_results": body,
        "recommendations": recommendations,
        "conversation_topics": conversation_topics,
        "risk_mitigations": risk_mitigations,
        "summary": summary,
    }
    fields_set = set(values)
    fields_set.discard("requested_at")
    result = _new(AnalysisResults)
    _set(result, "__dict__", values)
    _set(result, "__pydantic_fields_set__", fields_set)
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result


def analysis_body(
    scores: dict[str, int], score_details: dict[str, ScoreDetail], flags: list[Flag]
) -> AnalysisBody:
    values = {"scores": scores, "score_details": score_details, "flags": flags}
    result = _new(AnalysisBody)
    _set(result, "__dict__", values)
    _set(result, "__pydantic_fields_set__", set(values))
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result


def subject(account_id: str, opportunity_id: str | None) -> Subject:
    """A subject naming ids only (display names unset, as when they are not passed)."""
    values = {
        "account_id": account_id,
        "opportunity_id": opportunity_id,
        "account_name": None,
        "opportunity_name": None,
    }
    result = _new(Subject)
    _set(result, "__dict__", values)
    _set(result, "__pydantic_fields_set__", {"account_id", "opportunity_id"})
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result
