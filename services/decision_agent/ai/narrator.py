"""The narrative of a deal or an account: summary and the wording of its recommendations
and mitigations, written by a model from the analysis's facts and grounded sentence by
sentence against them.

Which actions are recommended, to whom and with what priority stays the deterministic
analysis's; the model only words them. A summary sentence, a recommendation wording or a
mitigation with a number, date or id the facts lack is dropped; a recommendation the model
did not word (or whose wording was dropped) keeps its deterministic text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from contracts.analysis import AnalysisResults, FlagType, ModelUse
from contracts.common import AnalysisType
from services.decision_agent.ai.facts import narrative_facts
from services.decision_agent.ai.grounding import FactIndex, Rejections, sentences
from services.decision_agent.ai.outputs import Narrative
from services.decision_agent.knowledge.port import Passage
from services.decision_agent.model.gateway import FlowLedger, ModelFallback, ModelGateway
from services.decision_agent.model.port import ModelRequest
from services.decision_agent.prompts.catalog import Prompt, PromptCatalog

PROMPT_FOR = {
    AnalysisType.DEAL_QUALITY: "deal_narrative",
    AnalysisType.CONSUMPTION: "account_narrative",
}


@dataclass
class GroundedNarrative:
    summary: str | None = None
    recommendations: dict[str, str] = field(default_factory=dict)
    mitigations: list[str] = field(default_factory=list)


def ground_narrative(
    answer: Narrative, facts: dict[str, Any], result: AnalysisResults, rejections: Rejections
) -> GroundedNarrative:
    index = FactIndex(facts)
    grounded = GroundedNarrative()

    def supported(claim: str, where: str) -> bool:
        missing = index.unsupported(claim)
        if missing:
            rejections.add(
                "not_in_analysis", f"{where}: {claim}", f"not in the analysis: {', '.join(missing)}"
            )
        return not missing

    kept = [s for n, s in enumerate(sentences(answer.summary)) if supported(s, f"summary.{n}")]
    if kept:
        grounded.summary = " ".join(kept)
    elif not answer.summary.strip():
        rejections.add("empty", "summary", "the model wrote no summary")
    known_ids = {r.id for r in result.recommendations}
    for wording in answer.recommendations:
        text = wording.description.strip()
        where = f"recommendations.{wording.id}"
        if wording.id not in known_ids:
            rejections.add("unknown_recommendation", f"{where}: {text}", "no such recommendation")
        elif not text:
            rejections.add("empty", where, "empty wording")
        elif wording.id not in grounded.recommendations and supported(text, where):
            grounded.recommendations[wording.id] = text
    risk_codes = {f.code for f in result.analysis_results.flags if f.type == FlagType.RISK}
    for n, mitigation in enumerate(answer.mitigations):
        text = mitigation.text.strip()
        where = f"mitigations.{n}"
        if mitigation.based_on not in risk_codes:
            rejections.add(
                "unknown_flag", f"{where}: {text}", f"{mitigation.based_on!r} is not a risk flag"
            )
        elif text and supported(text, where):
            grounded.mitigations.append(text)
    return grounded


def apply_narrative(
    result: AnalysisResults, grounded: GroundedNarrative
) -> tuple[AnalysisResults, list[str], dict[str, str]]:
    """(result with the model's wording, the parts it wrote, the texts it replaced)."""
    parts: list[str] = []
    replaced: dict[str, str] = {}
    update: dict[str, Any] = {}
    if grounded.summary:
        update["summary"] = grounded.summary
        parts.append("summary")
        replaced["summary"] = result.summary
    recommendations = []
    for rec in result.recommendations:
        wording = grounded.recommendations.get(rec.id)
        if wording is None or wording == rec.description:
            recommendations.append(rec)
            continue
        name = f"recommendations.{rec.id}.description"
        parts.append(name)
        replaced[name] = rec.description
        recommendations.append(rec.model_copy(update={"description": wording}))
    update["recommendations"] = recommendations
    if grounded.mitigations:
        update["risk_mitigations"] = grounded.mitigations
        parts.append("risk_mitigations")
        for n, text in enumerate(result.risk_mitigations):
            replaced[f"risk_mitigations.{n}"] = text
    return result.model_copy(update=update), parts, replaced


class Narrator:
    def __init__(
        self,
        gateway: ModelGateway,
        prompts: PromptCatalog,
        *,
        temperature: float = 0.0,
        max_tokens: int = 1024,
    ) -> None:
        self.gateway = gateway
        self.prompts = prompts
        self.temperature = temperature
        self.max_tokens = max_tokens

    def prompt_for(self, analysis_type: AnalysisType) -> Prompt | None:
        prompt_id = PROMPT_FOR.get(analysis_type)
        return self.prompts[prompt_id] if prompt_id else None

    def request_for(
        self,
        prompt: Prompt,
        result: AnalysisResults,
        facts: dict[str, Any],
        passages: list[Passage],
    ) -> ModelRequest:
        system, user = prompt.render(
            analysis_type=result.analysis_type.value,
            subject=facts["subject"],
            facts_json=orjson.dumps(facts, option=orjson.OPT_INDENT_2).decode(),
            knowledge=[{"id": p.id, "title": p.title, "text": p.text} for p in passages],
        )
        spec = prompt.spec
        return ModelRequest(
            prompt_id=spec.id,
            prompt_version=prompt.version,
            system=system,
            user=user,
            tool_name=spec.tool_name,
            tool_description=spec.tool_description,
            output_model=Narrative,
            max_tokens=spec.max_tokens or self.max_tokens,
            temperature=self.temperature,
        )

    async def narrate(
        self, result: AnalysisResults, passages: list[Passage], flow: FlowLedger
    ) -> tuple[AnalysisResults, ModelUse | None, list[str], dict[str, str]]:
        prompt = self.prompt_for(result.analysis_type)
        if prompt is None:
            return result, None, [], {}
        facts = narrative_facts(result)
        request = self.request_for(prompt, result, facts, passages)
        use = ModelUse(prompt=prompt.id, prompt_version=prompt.version, outcome="fallback")
        try:
            answer = await self.gateway.ask(request, flow)
        except ModelFallback as exc:
            return result, use.model_copy(update={"reason": exc.reason}), [], {}
        assert isinstance(answer.output, Narrative)
        rejections = Rejections(prompt.id)
        grounded = ground_narrative(answer.output, facts, result, rejections)
        narrated, parts, replaced = apply_narrative(result, grounded)
        return (
            narrated,
            use.model_copy(
                update={
                    "outcome": "cache" if answer.from_cache else "model",
                    "tokens_in": answer.tokens_in,
                    "tokens_out": answer.tokens_out,
                    "grounding_rejections": len(rejections),
                }
            ),
            parts,
            replaced,
        )
