"""Build the AI layer from the settings, validating its files at start-up.

Prompts are validated whether or not a model is configured (a broken prompt file stops the
decision agent like a broken rule file); the knowledge files and the model only when one is.
"""

from __future__ import annotations

import asyncio

from contracts.analysis import AnalysisResults
from contracts.dataset import DatasetBase
from services.common.security.secrets import SecretsProvider
from services.common.settings import Settings, get_settings
from services.decision_agent.ai.call_reader import PROMPT_ID, CallReader
from services.decision_agent.ai.layer import AiLayer, AiLimits
from services.decision_agent.ai.narrator import Narrator
from services.decision_agent.conversation.lexicon import LexiconExtractor
from services.decision_agent.knowledge.port import Retriever
from services.decision_agent.model.factory import ModelConfigError, build_gateway
from services.decision_agent.model.port import ModelPort
from services.decision_agent.prompts.catalog import PromptCatalog

KNOWLEDGE_BACKENDS = ("local", "bedrock", "none")


def build_retriever(settings: Settings) -> Retriever | None:
    backend = settings.knowledge_backend.strip().lower()
    if backend == "none":
        return None
    if backend == "local":
        from services.decision_agent.knowledge.documents import load_chunks
        from services.decision_agent.knowledge.local_index import LocalKnowledgeIndex

        return LocalKnowledgeIndex(load_chunks(settings.knowledge_dir, [settings.rules_dir]))
    if backend == "bedrock":
        from services.decision_agent.knowledge.bedrock_kb import BedrockKnowledgeBase

        try:
            return BedrockKnowledgeBase(
                settings.knowledge_base_id or "",
                region=settings.model_region,
                timeout_s=min(10.0, settings.model_timeout_s),
            )
        except ValueError as exc:
            raise ModelConfigError(str(exc)) from None
    raise ModelConfigError(
        f"REVOPS_KNOWLEDGE_BACKEND must be one of {', '.join(KNOWLEDGE_BACKENDS)}, not {backend!r}"
    )


def build_ai_layer(
    settings: Settings,
    *,
    secrets: SecretsProvider | None = None,
    port: ModelPort | None = None,
    lexicon: LexiconExtractor | None = None,
) -> AiLayer | None:
    """None when no model is configured. Raises RuleFileError (prompts, knowledge) or
    ModelConfigError (settings) with a one-line reason per problem."""
    prompts = PromptCatalog.load(settings.prompts_dir)
    gateway = build_gateway(settings, secrets, port)
    if gateway is None:
        return None
    calls = CallReader(
        gateway,
        prompts[PROMPT_ID],
        lexicon or LexiconExtractor.from_file(),
        max_calls=settings.model_max_calls,
        call_chars=settings.model_call_chars,
        concurrency=settings.model_concurrency,
        temperature=settings.model_temperature,
        max_tokens=settings.model_max_tokens,
    )
    narrator = Narrator(
        gateway,
        prompts,
        temperature=settings.model_temperature,
        max_tokens=settings.model_max_tokens,
    )
    return AiLayer(
        gateway,
        calls,
        narrator,
        build_retriever(settings),
        AiLimits(
            tokens_per_flow=settings.model_tokens_per_flow,
            flow_deadline_s=settings.model_flow_deadline_s,
            knowledge_top_k=settings.knowledge_top_k,
            retrieval_timeout_s=min(10.0, settings.model_timeout_s),
        ),
    )


def enrich_once(
    result: AnalysisResults, dataset: DatasetBase, settings: Settings | None = None
) -> AnalysisResults:
    """One analysis through the configured model, for a command-line report. Raises
    ModelConfigError when no model is configured."""
    layer = build_ai_layer(settings or get_settings())
    if layer is None:
        raise ModelConfigError("no model configured (REVOPS_MODEL_BACKEND=none)")

    async def run() -> AnalysisResults:
        try:
            return await layer.enrich(result, dataset)
        finally:
            await layer.close()

    return asyncio.run(run())
