"""Output models built from values our own code produced, without re-validating them.

A deal's result holds ~100 pydantic objects; validating each one costs about twice what
building it costs, and ``Model.model_construct`` is slower still (it walks every field in
Python; measured on this project's machine with pydantic 2.14: validate 2.2 us,
model_construct 5.0 us, these 0.8 us for a ScoreFactor). Every function here fills what
validation fills (``__dict__`` with every field, the fields marked as set as if each had been
passed, no extras, no private attributes), so a result built here equals its validated copy:
tests/unit/deal_quality/test_trusted.py proves ``Model.model_validate(result.model_dump())
== result`` (same repr, same JSON, strict validation passes) on many generated deals.

Callers pass values of the declared types (floats for float fields, enums for enum fields,
lists for list fields); nothing checks it here, the tests do.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

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

_M = TypeVar("_M", bound=BaseModel)

# What BaseModel.model_construct does, reduced to the four slot writes: the hot path makes
# ~100 a deal. The slots are written through their descriptors (what object.__setattr__ looks
# up by name on every call; ~35 % cheaper per object, measured).
_new = object.__new__
_SLOTS = BaseModel.__dict__
_set_dict = _SLOTS["__dict__"].__set__
_set_fields_set = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__


def _all_fields(model: type[BaseModel]) -> set[str]:
    """One "fields set" shared by every instance of ``model`` built with all fields passed.

    Sharing is safe: pydantic only ever adds a field name to an instance's set (on attribute
    assignment) and every name is already in it; copies (model_copy) copy the set.
    """
    return set(model.model_fields)


_EVIDENCE_FIELDS = _all_fields(Evidence)
_SCORE_FACTOR_FIELDS = _all_fields(ScoreFactor)
_SCORE_DETAIL_FIELDS = _all_fields(ScoreDetail)
_FLAG_FIELDS = _all_fields(Flag)
_RECOMMENDATION_FIELDS = _all_fields(Recommendation)
_ANALYSIS_BODY_FIELDS = _all_fields(AnalysisBody)


def _instance(model: type[_M], values: dict[str, Any], fields_set: set[str]) -> _M:
    result = _new(model)
    _set_dict(result, values)
    _set_fields_set(result, fields_set)
    _set_extra(result, None)
    _set_private(result, None)
    return result


def evidence(
    source: str,
    ref: str | None = None,
    field: str | None = None,
    date: str | None = None,
    value: Any = None,
    snippet: str | None = None,
) -> Evidence:
    """Evidence with every field set (as ``Evidence(source=..., ..., snippet=...)``)."""
    # _instance written out: evidence and score factors are most of a result's objects.
    result = _new(Evidence)
    _set_dict(
        result,
        {
            "source": source,
            "ref": ref,
            "field": field,
            "date": date,
            "value": value,
            "snippet": snippet,
        },
    )
    _set_fields_set(result, _EVIDENCE_FIELDS)
    _set_extra(result, None)
    _set_private(result, None)
    return result


def score_factor(
    factor: str,
    points: float,
    possible: float,
    explanation: str | None,
    evidence: list[Evidence],
) -> ScoreFactor:
    result = _new(ScoreFactor)  # _instance written out, as in evidence()
    _set_dict(
        result,
        {
            "factor": factor,
            "points": points,
            "possible": possible,
            "explanation": explanation,
            "evidence": evidence,
        },
    )
    _set_fields_set(result, _SCORE_FACTOR_FIELDS)
    _set_extra(result, None)
    _set_private(result, None)
    return result


def score_detail(score: int, band: str, factors: list[ScoreFactor]) -> ScoreDetail:
    values = {"score": score, "band": band, "factors": factors}
    return _instance(ScoreDetail, values, _SCORE_DETAIL_FIELDS)


def flag(
    type: FlagType,
    severity: Severity,
    description: str,
    code: str,
    category: InsightCategory,
    insight_type: str,
    confidence: float,
    evidence: list[Evidence],
    event_id: str | None = None,
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
        "event_id": event_id,  # deal flags report no event; usage anomaly flags do
    }
    return _instance(Flag, values, _FLAG_FIELDS)


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
    return _instance(Recommendation, values, _RECOMMENDATION_FIELDS)


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
    """The result; ``requested_at`` and the language-model fields stay unset (their
    defaults), as when they are not passed."""
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
    values["call_insights"] = []
    values["ai"] = None
    return _instance(AnalysisResults, values, fields_set)


def analysis_body(
    scores: dict[str, int], score_details: dict[str, ScoreDetail], flags: list[Flag]
) -> AnalysisBody:
    values = {"scores": scores, "score_details": score_details, "flags": flags}
    return _instance(AnalysisBody, values, _ANALYSIS_BODY_FIELDS)


def subject(account_id: str, opportunity_id: str | None) -> Subject:
    """A subject naming ids only (display names unset, as when they are not passed)."""
    values = {
        "account_id": account_id,
        "opportunity_id": opportunity_id,
        "account_name": None,
        "opportunity_name": None,
    }
    return _instance(Subject, values, {"account_id", "opportunity_id"})
