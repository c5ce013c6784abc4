"""`ConsumptionAnalyzer`: one account's consumption analysis as seed `AnalysisResults`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from contracts.analysis import AnalysisResults
from contracts.dataset import DatasetBase, PreliminaryFinding
from services.common.rulefiles import load_rule_file
from services.decision_agent.consumption.inputs import inputs_from_dataset
from services.decision_agent.consumption.pipeline import FleetAssessment, assess
from services.decision_agent.consumption.report import analysis_results
from services.decision_agent.consumption.rule_models import ConsumptionRules

RULE_FILE = "consumption.yaml"


def load_consumption_rules(rules_dir: Path) -> ConsumptionRules:
    """Read `<rules_dir>/consumption.yaml` (raises RuleFileError with file:line problems)."""
    return load_rule_file(Path(rules_dir) / RULE_FILE, ConsumptionRules)


def analysis_day(dataset: DatasetBase) -> date:
    """`dataset.as_of`, else the last usage day, else today."""
    if dataset.as_of is not None:
        return dataset.as_of
    return dataset.usage_series().last_day() or date.today()


class ConsumptionAnalyzer:
    def __init__(self, rules: ConsumptionRules) -> None:
        self.rules = rules

    def assess(self, dataset: DatasetBase) -> FleetAssessment:
        """The arrays behind the results (one row), e.g. for `revops explain account`."""
        inputs = inputs_from_dataset(
            dataset,
            analysis_day(dataset),
            self.rules.history_days,
            self.rules.signals.high_priorities,
        )
        return assess(inputs, self.rules)

    def analyze(
        self, request_id: str, dataset: DatasetBase, findings: list[PreliminaryFinding]
    ) -> AnalysisResults:
        return analysis_results(request_id, self.assess(dataset), 0, self.rules, findings)
