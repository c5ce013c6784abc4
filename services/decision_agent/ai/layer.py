"""`AiLayer.enrich`: the deterministic analysis in, the same analysis with grounded call
insights, a model-worded narrative and its provenance out.

Order: read the customer calls (one prompt each), retrieve the rules and playbooks that fit
the analysis, write the narrative. Each step falls back on its own: a call that cannot be
read adds nothing, a failed retrieval leaves the narrative without context, a failed
narrative keeps the deterministic texts. `enrich` never raises: whatever happens, the flow
continues with at least the deterministic analysis, and `ai` says what the model wrote.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from contracts.analysis import AiProvenance, AnalysisResults, CallInsightKind, ModelUse
from contracts.dataset import DatasetBase
from services.common.breaker import AsyncCircuitBreaker
from services.decision_agent.ai.call_reader import CallReader
from services.decision_agent.ai.narrator import Narrator
from services.decision_agent.knowledge.port import Passage, Retriever
from services.decision_agent.model import metrics
from services.decision_agent.model.gateway import FlowLedger, ModelGateway

log = structlog.get_logger("ai_layer")


@dataclass(frozen=True)
class AiLimits:
    tokens_per_flow: int = 40_000
    flow_deadline_s: float = 90.0
    knowledge_top_k: int = 4
    retrieval_timeout_s: float = 10.0


def retrieval_query(result: AnalysisResults, dataset: DatasetBase) -> str:
    """Words that name the situation: flags, actions, what calls showed, stage, customer."""
    body = result.analysis_results
    words = [result.analysis_type.value]
    words += [f"{f.code} {f.insight_type}" for f in body.flags]
    words += [r.action for r in result.recommendations]
    words += [
        f"{i.kind.value} {i.label}"
        for i in result.call_insights
        if i.kind != CallInsightKind.STAKEHOLDER
    ]
    if dataset.opportunity is not None:
        words.append(dataset.opportunity.stage_name)
        words.append(dataset.opportunity.competitors or "")
    account = dataset.account
    words += [account.customer_class.value, account.sf_industry or ""]
    return " ".join(w for w in words if w)


class AiLayer:
    def __init__(
        self,
        gateway: ModelGateway,
        calls: CallReader,
        narrator: Narrator,
        retriever: Retriever | None,
        limits: AiLimits | None = None,
    ) -> None:
        self.gateway = gateway
        self.calls = calls
        self.narrator = narrator
        self.retriever = retriever
        self.limits = limits or AiLimits()
        self._retrieval_breaker = (
            AsyncCircuitBreaker(f"knowledge:{retriever.backend}") if retriever else None
        )

    async def enrich(self, result: AnalysisResults, dataset: DatasetBase) -> AnalysisResults:
        try:
            return await self._enrich(result, dataset)
        except Exception as exc:  # never let the AI layer fail a flow
            log.exception("ai_layer_failed", error=str(exc))
            metrics.MODEL_FALLBACKS.labels("ai_layer", "error").inc()
            use = ModelUse(
                prompt="ai_layer", prompt_version="-", outcome="fallback", reason="error"
            )
            return result.model_copy(update={"ai": self._provenance([use], [], {}, [], 0.0)})

    async def _enrich(self, result: AnalysisResults, dataset: DatasetBase) -> AnalysisResults:
        flow = FlowLedger.starting_now(self.limits.tokens_per_flow, self.limits.flow_deadline_s)
        insights, uses = await self.calls.read(
            dataset.calls, dataset.contacts, dataset.account, flow
        )
        parts = ["call_insights"] if insights else []
        current = result.model_copy(update={"call_insights": insights})
        passages = await self._retrieve(current, dataset)
        narrated, use, narrative_parts, replaced = await self.narrator.narrate(
            current, passages, flow
        )
        if use is not None:
            uses.append(use)
        metrics.FLOW_COST.labels(result.analysis_type.value).observe(flow.cost_usd)
        provenance = self._provenance(
            uses, parts + narrative_parts, replaced, [p.id for p in passages], flow.cost_usd
        )
        return narrated.model_copy(update={"ai": provenance})

    def _provenance(
        self,
        uses: list[ModelUse],
        parts: list[str],
        replaced: dict[str, str],
        knowledge: list[str],
        cost: float,
    ) -> AiProvenance:
        return AiProvenance(
            backend=self.gateway.backend,
            model_id=self.gateway.model_id,
            parts=parts,
            replaced=replaced,
            uses=uses,
            knowledge=knowledge,
            estimated_cost_usd=round(cost, 6),
        )

    async def _retrieve(self, result: AnalysisResults, dataset: DatasetBase) -> list[Passage]:
        if self.retriever is None or self._retrieval_breaker is None:
            return []
        backend = self.retriever.backend
        query = retrieval_query(result, dataset)

        async def timed() -> list[Passage]:
            assert self.retriever is not None
            async with asyncio.timeout(self.limits.retrieval_timeout_s):
                return await self.retriever.retrieve(
                    query, self.limits.knowledge_top_k, result.analysis_type.value
                )

        try:
            passages = await self._retrieval_breaker.call(timed)
        except Exception as exc:  # CircuitOpenError, timeouts, the knowledge base's errors
            metrics.KNOWLEDGE_RETRIEVALS.labels(backend, "failed").inc()
            log.warning("knowledge_retrieval_failed", backend=backend, error=str(exc)[:300])
            return []
        metrics.KNOWLEDGE_RETRIEVALS.labels(backend, "ok").inc()
        return passages

    async def close(self) -> None:
        await self.gateway.close()
