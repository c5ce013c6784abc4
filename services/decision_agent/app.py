"""Decision agent process: analytical datasets in, scored analyses with recommendations out.

`revops.datasets` -> deal-quality or consumption analysis (rules as data, loaded and
validated at start-up: a bad rule file stops the process with file and line) ->
`revops.decisions`.
"""

from __future__ import annotations

import time
from typing import Protocol

from contracts import AgentName, AnalysisResults, AnalysisType, AnalyticalDataset
from contracts.dataset import Dataset, PreliminaryFinding
from services.common import metrics
from services.common.errors import PermanentError
from services.common.messages import envelope_parser, make_envelope
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.decision_agent.consumption.analyzer import ConsumptionAnalyzer, load_consumption_rules
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer, load_deal_rules

NAME = AgentName.DECISION_AGENT.value


class Analyzer(Protocol):
    def analyze(
        self, request_id: str, dataset: Dataset, findings: list[PreliminaryFinding]
    ) -> AnalysisResults: ...


parse_dataset = envelope_parser(AnalyticalDataset, NAME)


class DecisionAgent:
    def __init__(self, settings: Settings, analyzers: dict[AnalysisType, Analyzer]) -> None:
        self.settings = settings
        self.analyzers = analyzers

    def decide(self, data: AnalyticalDataset) -> AnalysisResults:
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
        data: AnalyticalDataset = item.body
        meta = item.envelope.metadata
        result = self.decide(data)
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
    return DecisionAgent(
        settings,
        {
            AnalysisType.DEAL_QUALITY: DealQualityAnalyzer(load_deal_rules(settings.rules_dir)),
            AnalysisType.CONSUMPTION: ConsumptionAnalyzer(
                load_consumption_rules(settings.rules_dir)
            ),
        },
    )


async def build_runtime(settings: Settings, http_port: int | None) -> ServiceRuntime:
    agent = build_agent(settings)  # rules are validated before the process joins the group
    runtime = ServiceRuntime(NAME, settings, http_port=http_port)
    runtime.subscribe(settings.topics.datasets, parse_dataset, agent.handle)
    return runtime
