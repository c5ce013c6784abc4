"""The decision agent's analysis per analysis type (docs/extending.md).

Each entry builds its analyzer from the rules folder; every analyzer is built, and so every
rule file checked, at start-up. A dataset of a type with no entry is refused (a dead letter
naming the type). A new type adds its package (analyzer + rules file) and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from contracts import AnalysisResults, AnalysisType
from contracts.dataset import DatasetBase, PreliminaryFinding
from services.decision_agent.consumption.analyzer import ConsumptionAnalyzer, load_consumption_rules
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer, load_deal_rules
from services.decision_agent.renewal.analyzer import RenewalRiskAnalyzer, load_renewal_rules


class Analyzer(Protocol):
    def analyze(
        self, request_id: str, dataset: DatasetBase, findings: list[PreliminaryFinding]
    ) -> AnalysisResults: ...


AnalysisRequest = tuple[str, DatasetBase, list[PreliminaryFinding]]


@runtime_checkable
class BatchAnalyzer(Analyzer, Protocol):
    """An analyzer that analyses several datasets at once (cheaper than one by one), with
    the same result per dataset as `analyze`, or the exception `analyze` would raise."""

    def analyze_batch(
        self, requests: Sequence[AnalysisRequest]
    ) -> list[AnalysisResults | Exception]: ...


AnalyzerFactory = Callable[[Path], Analyzer]

ANALYZERS: dict[AnalysisType, AnalyzerFactory] = {
    AnalysisType.DEAL_QUALITY: lambda rules_dir: DealQualityAnalyzer(load_deal_rules(rules_dir)),
    AnalysisType.CONSUMPTION: lambda rules_dir: ConsumptionAnalyzer(
        load_consumption_rules(rules_dir)
    ),
    AnalysisType.RENEWAL_RISK: lambda rules_dir: RenewalRiskAnalyzer(
        load_renewal_rules(rules_dir), ConsumptionAnalyzer(load_consumption_rules(rules_dir))
    ),
}


def build_analyzers(rules_dir: Path) -> dict[AnalysisType, Analyzer]:
    return {analysis_type: build(rules_dir) for analysis_type, build in ANALYZERS.items()}
