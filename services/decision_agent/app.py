"""Decision agent process: analytical datasets in, scored analyses with recommendations out.

`revops.datasets` -> the analysis of the dataset's type (`analyzers.py`; rules as data, loaded and
validated at start-up: a bad rule file stops the process with file and line) -> when a
language model is configured, grounded call insights and a model-worded narrative (the AI
layer, services/decision_agent/ai; scores stay deterministic) -> `revops.decisions`.
"""

from __future__ import annotations

import time

import structlog
from pydantic import ValidationError

from contracts import AgentName, AnalysisResults, AnalysisType, Envelope
from contracts.dataset import DatasetMessage
from contracts.dataset_columns import read_dataset
from contracts.series import DatasetFormatError
from services.common import metrics
from services.common.errors import PermanentError
from services.common.messages import describe, envelope_reader, make_envelope
from services.common.records import Outgoing, Parsed, Record
from services.common.rulefiles import RuleFileError
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.decision_agent.ai.layer import AiLayer
from services.decision_agent.ai.setup import build_ai_layer
from services.decision_agent.analyzers import Analyzer, build_analyzers
from services.decision_agent.conversation.lexicon import LexiconExtractor
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer
from services.decision_agent.model.factory import ModelConfigError

NAME = AgentName.DECISION_AGENT.value
#: A batch's records are handled one after another; with a model each may take up to the
#: flow deadline, and the whole batch must finish inside Kafka's max poll interval.
MAX_POLL_BUDGET_S = 540.0

log = structlog.get_logger(NAME)


def read_dataset_payload(envelope: Envelope) -> DatasetMessage:
    """Either form of dataset (rows before the upgrade, columns after); the series of the
    columnar form are read as views, not re-validated (docs/dataset-wire-format.md)."""
    try:
        return read_dataset(envelope.payload)
    except DatasetFormatError as exc:
        raise PermanentError(str(exc), code=exc.code) from exc
    except ValidationError as exc:
        message = "payload is not a valid AnalyticalDataset"
        raise PermanentError(message, code="INVALID_PAYLOAD", details=describe(exc)) from exc


parse_dataset = envelope_reader(read_dataset_payload, NAME)


class DecisionAgent:
    def __init__(
        self,
        settings: Settings,
        analyzers: dict[AnalysisType, Analyzer],
        ai: AiLayer | None = None,
    ) -> None:
        self.settings = settings
        self.analyzers = analyzers
        self.ai = ai

    def decide(self, data: DatasetMessage) -> AnalysisResults:
        analyzer = self.analyzers.get(data.analysis_type)
        if analyzer is None:
            raise PermanentError(
                f"no analysis for analysis_type={data.analysis_type}", code="UNKNOWN_ANALYSIS"
            )
        started = time.perf_counter()
        result = analyzer.analyze(data.request_id, data.dataset, data.preliminary_findings)
        metrics.STAGE_SECONDS.labels(NAME, data.analysis_type.value).observe(
            time.perf_counter() - started
        )
        # The analyzers name the subject by id; the dataset's subject also carries names.
        return result.model_copy(
            update={"requested_at": data.requested_at, "subject": data.subject}
        )

    async def handle(self, item: Parsed, record: Record) -> list[Outgoing]:
        data: DatasetMessage = item.body
        meta = item.envelope.metadata
        result = self.decide(data)
        if self.ai is not None:  # never raises: falls back to the deterministic texts
            result = await self.ai.enrich(result, data.dataset)
        envelope = make_envelope(
            result,
            request_id=meta.request_id,
            flow_id=meta.flow_id,
            correlation_id=meta.correlation_id,
            source=NAME,
            target=AgentName.EXECUTION_AGENT.value,
            stage="decision",
        )
        return [
            Outgoing(
                self.settings.topics.decisions,
                data.subject.account_id,
                envelope,
                audience=AgentName.EXECUTION_AGENT.value,
            )
        ]


def build_agent(settings: Settings) -> DecisionAgent:
    analyzers = build_analyzers(settings.rules_dir)
    # The AI layer reads calls with the deal rubric's lexicon when that is the extractor.
    deal_analyzer = analyzers.get(AnalysisType.DEAL_QUALITY)
    lexicon = deal_analyzer.extractor if isinstance(deal_analyzer, DealQualityAnalyzer) else None
    return DecisionAgent(
        settings,
        analyzers,
        build_ai_layer(
            settings, lexicon=lexicon if isinstance(lexicon, LexiconExtractor) else None
        ),
    )


def model_batch_size(settings: Settings) -> int:
    """Records per batch such that a batch of slow model flows ends before Kafka's max poll
    interval (a consumer that polls too late is thrown out of its group)."""
    per_batch = max(1, int(MAX_POLL_BUDGET_S // max(settings.model_flow_deadline_s, 1.0)))
    return min(settings.batch_max_records, per_batch)


async def build_runtime(settings: Settings, http_port: int | None) -> ServiceRuntime:
    try:  # rules, prompts and model settings are checked before the process joins its group
        agent = build_agent(settings)
    except (RuleFileError, ModelConfigError) as exc:
        raise SystemExit(f"decision agent cannot start: {exc}") from None
    if agent.ai is not None:
        batch = model_batch_size(settings)
        settings = settings.model_copy(update={"batch_max_records": batch})
        log.info(
            "language_model_enabled",
            backend=agent.ai.gateway.backend,
            model_id=agent.ai.gateway.model_id,
            batch_max_records=batch,
        )
    runtime = ServiceRuntime(NAME, settings, http_port=http_port)
    runtime.subscribe(settings.topics.datasets, parse_dataset, agent.handle)
    if agent.ai is not None:
        ai = agent.ai
        runtime.on_stop.append(ai.close)
        cache = ai.gateway.cache
        if cache is not None:
            runtime.every("purge_prompt_cache", cache.purge_expired)
    return runtime
