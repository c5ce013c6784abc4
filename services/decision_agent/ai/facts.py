"""The facts a narrative is written from: the analysis's own scores, factors, flags,
evidence and recommendations, compacted for a prompt.

The same document is the grounding reference: every number, date and id in the narrative
must appear in it. Nothing here is computed anew; counts are lengths of the analysis's own
lists. Request ids and timestamps are left out, so an unchanged deal gives the same facts
(and hits the prompt cache) on every run.
"""

from __future__ import annotations

from typing import Any

from contracts.analysis import AnalysisResults, CallInsight, FlagType
from contracts.common import Evidence, Severity

MAX_EVIDENCE = 3
MAX_FACTORS_PER_SCORE = 6
MAX_TEXT = 300
SERIOUS = (Severity.CRITICAL, Severity.HIGH)
SCALES = {
    "churn_risk": "0-100, higher is riskier",
}
DEFAULT_SCALE = "0-100, higher is better"


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "..."
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_short(v) for v in value[: MAX_EVIDENCE * 2]]
    return value


def _evidence(items: list[Evidence]) -> list[dict[str, Any]]:
    return [
        _short(e.model_dump(exclude_none=True, exclude_defaults=True)) for e in items[:MAX_EVIDENCE]
    ]


def _insight(insight: CallInsight) -> dict[str, Any]:
    return insight.model_dump(mode="json", exclude_none=True)


def narrative_facts(result: AnalysisResults) -> dict[str, Any]:
    body = result.analysis_results
    subject = result.subject.model_dump(exclude_none=True)
    scores = {}
    for name, detail in body.score_details.items():
        # Where points were lost explains a score; full-marks factors add nothing.
        lost = sorted(
            (f for f in detail.factors if f.points < f.possible),
            key=lambda f: f.points - f.possible,
        )[:MAX_FACTORS_PER_SCORE]
        scores[name] = {
            "score": detail.score,
            "band": detail.band,
            "scale": SCALES.get(name, DEFAULT_SCALE),
            "factors_losing_points": [
                {
                    "factor": f.factor,
                    "points": f.points,
                    "possible": f.possible,
                    "explanation": f.explanation,
                    "evidence": _evidence(f.evidence),
                }
                for f in lost
            ],
        }
    for name, value in body.scores.items():
        scores.setdefault(name, {"score": value, "scale": SCALES.get(name, DEFAULT_SCALE)})
    risks = [f for f in body.flags if f.type == FlagType.RISK]
    return {
        "subject": subject,
        "scores": scores,
        "flags": [
            {
                "code": f.code,
                "type": f.type.value,
                "severity": f.severity.value,
                "description": f.description,
                "evidence": _evidence(f.evidence),
            }
            for f in body.flags
        ],
        "recommendations": [
            {
                "id": r.id,
                "priority": r.priority.value,
                "action": r.action,
                "description": r.description,
                "assignee": r.assignee,
                "based_on": r.based_on,
            }
            for r in result.recommendations
        ],
        "risk_mitigations": result.risk_mitigations,
        "conversation_topics": result.conversation_topics,
        "call_insights": [_insight(i) for i in result.call_insights],
        "counts": {
            "risks": len(risks),
            "critical_or_high_risks": sum(1 for f in risks if f.severity in SERIOUS),
            "opportunities": len(body.flags) - len(risks),
            "recommendations": len(result.recommendations),
        },
        "deterministic_summary": result.summary,
    }
