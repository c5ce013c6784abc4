"""Plain-text layout of a deal-quality result for people (scores, breakdowns, flags, actions)."""

from __future__ import annotations

from contracts.analysis import AnalysisResults
from contracts.common import Evidence
from services.decision_agent.ai.report import render_ai

SCORE_ORDER = ("deal_quality", "deal_health", "icp_fit", "technical_fit", "data_completeness")


def _evidence(evidence: list[Evidence]) -> str:
    parts = []
    for e in evidence[:3]:
        where = e.source + (f" {e.ref}" if e.ref else "") + (f".{e.field}" if e.field else "")
        if e.date:
            where += f" @ {e.date}"
        if e.snippet:
            where += f' "{e.snippet}"'
        elif e.value is not None:
            where += f" = {e.value}"
        parts.append(where)
    return "; ".join(parts)


def render_text(result: AnalysisResults) -> str:
    body = result.analysis_results
    lines = [result.summary, ""]
    lines.append("Scores")
    for name in SCORE_ORDER:
        if name in body.score_details:
            detail = body.score_details[name]
            lines.append(f"  {name:<18} {detail.score:>3}/100  {detail.band}")
    for name in SCORE_ORDER:
        breakdown = body.score_details.get(name)
        if breakdown is None:
            continue
        detail = breakdown
        lines += ["", f"{name} breakdown ({detail.score}/100, {detail.band})"]
        for factor in detail.factors:
            lines.append(
                f"  {factor.factor:<40} {factor.points:>6.2f}/{factor.possible:<6g} "
                f"{factor.explanation or ''}"
            )
            if factor.evidence and factor.points < factor.possible:
                lines.append(f"  {'':<40} evidence: {_evidence(factor.evidence)}")
    lines += ["", "Flags"]
    for flag in body.flags or []:
        lines.append(f"  [{flag.type.value}/{flag.severity.value}] {flag.code}: {flag.description}")
        if flag.evidence:
            lines.append(f"      evidence: {_evidence(flag.evidence)}")
    if not body.flags:
        lines.append("  none")
    lines += ["", "Recommendations"]
    for rec in result.recommendations:
        lines.append(f"  {rec.id} [{rec.priority.value}] {rec.assignee}: {rec.description}")
    if not result.recommendations:
        lines.append("  none")
    if result.conversation_topics:
        lines += ["", "Conversation topics", *(f"  - {t}" for t in result.conversation_topics)]
    if result.risk_mitigations:
        lines += ["", "Risk mitigations", *(f"  - {m}" for m in result.risk_mitigations)]
    lines += render_ai(result.ai, result.call_insights)
    return "\n".join(lines)
