"""Decision agent process: analytical datasets in, scored analyses with recommendations out.

`revops.datasets` -> the analysis of the dataset's type (`analyzers.py`; rules as data, loaded and
validated at start-up: a bad rule file stops the process with file and line) -> when a
language model is configured, grounded call insights and a model-worded narrative (the AI
layer, services/decision_agent/ai; scores stay deterministic) -> `revops.decisions`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog
from pydantic import ValidationError

from contracts import AgentName, AnalysisResults, AnalysisType, Envelope
from contracts.dataset import DatasetMessage
from contracts.dataset_columns import read_dataset
from contracts.series import DatasetFormatError
from services.common import metrics
from services.common.errors import PermanentError
from services.common.messages import describe, envelope_reader, make_envelope
from services.common.records import BatchOutcome, Outgoing, Parsed, Record
from services.common.rulefiles import RuleFileError
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.decision_agent.ai.layer import AiLayer
from services.decision_agent.ai.setup import build_ai_layer
from services.decision_agent.analyzers import Analyzer, BatchAnalyzer, build_analyzers
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
        # Looked up once: a runtime-checked protocol's isinstance is slow per batch.
        self.batch_analyzers = {
            analysis_type: analyzer
            for analysis_type, analyzer in analyzers.items()
            if isinstance(analyzer, BatchAnalyzer)
        }
        self.ai = ai

    def decide(self, data: DatasetMessage) -> AnalysisResults:
        started = time.perf_counter()
        result = self._analyzer(data).analyze(
            data.request_id, data.dataset, data.preliminary_findings
        )
        self._observe(data, time.perf_counter() - started)
        return self._finish(data, result)

    def decide_batch(self, batch: Sequence[DatasetMessage]) -> list[AnalysisResults | Exception]:
        """`decide` of every dataset of a batch, or the exception it raises. The datasets of
        an analysis that analyses several at once (`BatchAnalyzer`) go to it together."""
        results: list[AnalysisResults | Exception] = []
        by_type: dict[AnalysisType, list[int]] = {}
        for position, data in enumerate(batch):
            results.append(RuntimeError("not analysed"))
            by_type.setdefault(data.analysis_type, []).append(position)
        for analysis_type, positions in by_type.items():
            analyzer = self.batch_analyzers.get(analysis_type)
            if analyzer is None or len(positions) == 1:
                for position in positions:
                    results[position] = self._try_decide(batch[position])
                continue
            started = time.perf_counter()
            answers = analyzer.analyze_batch(
                [
                    (d.request_id, d.dataset, d.preliminary_findings)
                    for d in (batch[position] for position in positions)
                ]
            )
            share = (time.perf_counter() - started) / len(positions)
            for position, answer in zip(positions, answers, strict=True):
                data = batch[position]
                self._observe(data, share)
                results[position] = (
                    answer if isinstance(answer, Exception) else self._finish(data, answer)
                )
        return results

    def _try_decide(self, data: DatasetMessage) -> AnalysisResults | Exception:
        try:
            return self.decide(data)
        except Exception as exc:
            return exc

    def _analyzer(self, data: DatasetMessage) -> Analyzer:
        analyzer = self.analyzers.get(data.analysis_type)
        if analyzer is None:
            raise PermanentError(
                f"no analysis for analysis_type={data.analysis_type}", code="UNKNOWN_ANALYSIS"
            )
        return analyzer

    @staticmethod
    def _observe(data: DatasetMessage, seconds: float) -> None:
        metrics.STAGE_SECONDS.labels(NAME, data.analysis_type.value).observe(seconds)

    @staticmethod
    def _finish(data: DatasetMessage, result: AnalysisResults) -> AnalysisResults:
        # The analyzers name the subject by id; the dataset's subject also carries names.
        return result.model_copy(
            update={"requested_at": data.requested_at, "subject": data.subject}
        )

    async def handle(self, item: Parsed, record: Record) -> list[Outgoing]:
        return await self._outputs(item, self.decide(item.body))

    async def handle_batch(self, items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
        """`handle` for a partition's records of a consumed batch (services/common/records.py):
        the analyses decided together (`decide_batch`); a record whose analysis failed gets
        its exception, and the runtime hands it to `handle` alone (retry or dead letter).
        The analysis has no side effect, so the other records need not wait for it."""
        decided = self.decide_batch([item.body for item, _ in items])
        outcomes: list[BatchOutcome] = []
        for (item, _), result in zip(items, decided, strict=True):
            if isinstance(result, Exception):
                outcomes.append(result)
            else:
                outcomes.append(await self._outputs(item, result))
        return outcomes

    async def _outputs(self, item: Parsed, result: AnalysisResults) -> list[Outgoing]:
        data: DatasetMessage = item.body
        meta = item.envelope.metadata
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


# A dataset read, analysed and answered holds ~0.2 MB until its outputs are acknowledged (a
# batch of 500 added ~107 MB, of 100 ~14 MB): once the data agent kept up with bursts, the
# decision agent's batches grew to 500 and its peak RSS passed 150 MB (docs/batch-pipeline.md).
DATASETS_PER_BATCH = 100


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
    # Without a model a partition's records are analysed together (`handle_batch`); with
    # one, each record's model calls take seconds: its decision leaves as soon as it is made
    # instead of waiting for the whole group's.
    runtime.subscribe(
        settings.topics.datasets,
        parse_dataset,
        agent.handle,
        handle_batch=agent.handle_batch if agent.ai is None else None,
        # A batch's datasets, analyses and outputs are held until acknowledged (RSS).
        max_records=DATASETS_PER_BATCH,
    )
    if agent.ai is not None:
        ai = agent.ai
        runtime.on_stop.append(ai.close)
        cache = ai.gateway.cache
        if cache is not None:
            runtime.every("purge_prompt_cache", cache.purge_expired)
    return runtime
