"""Plain-text lines saying what a language model contributed to an analysis (for the
`revops explain` reports): which parts it wrote, with which prompt versions, what it
cost, what it fell back on, and the grounded call insights."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.analysis import AiProvenance, CallInsight


def render_ai(ai: AiProvenance | None, call_insights: Sequence[CallInsight] = ()) -> list[str]:
    if ai is None:
        return []
    lines = ["", f"Language model ({ai.backend} {ai.model_id})"]
    lines.append(
        "  written by the model: " + (", ".join(ai.parts) if ai.parts else "nothing (fallback)")
    )
    prompts = sorted({f"{u.prompt} {u.prompt_version}" for u in ai.uses})
    lines.append("  prompts: " + (", ".join(prompts) or "none"))
    outcomes: dict[str, int] = {}
    for use in ai.uses:
        key = use.outcome if use.reason is None else f"{use.outcome} ({use.reason})"
        outcomes[key] = outcomes.get(key, 0) + 1
    tokens = sum(u.tokens_in + u.tokens_out for u in ai.uses)
    rejected = sum(u.grounding_rejections for u in ai.uses)
    lines.append(
        "  answers: "
        + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
        + f"; {tokens} tokens, ~${ai.estimated_cost_usd:.4f}; "
        + f"{rejected} unsupported claim(s) dropped"
    )
    if ai.knowledge:
        lines.append("  context: " + ", ".join(ai.knowledge))
    if "summary" in ai.replaced:
        lines.append(f"  rules' summary: {ai.replaced['summary']}")
    if call_insights:
        lines += ["", "Call insights (model, each quote checked against its call)"]
        for insight in call_insights:
            who = f" {insight.stakeholder} ({insight.stance})" if insight.stakeholder else ""
            lines.append(
                f"  {insight.kind.value}: {insight.label}{who} [{insight.call_id}] "
                f'"{insight.quote}"'
            )
    return lines
