"""`ConsumptionAnalyzer`: the consumption analysis of one account, or of the accounts of
several datasets at once, as seed `AnalysisResults`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

from contracts.analysis import AnalysisResults
from contracts.dataset import DatasetBase, PreliminaryFinding
from services.common.rulefiles import load_rule_file
from services.decision_agent.consumption.inputs import (
    FleetInputs,
    concat_inputs,
    inputs_from_dataset,
)
from services.decision_agent.consumption.pipeline import FleetAssessment, assess
from services.decision_agent.consumption.report import analysis_results
from services.decision_agent.consumption.rule_models import ConsumptionRules

RULE_FILE = "consumption.yaml"

#: One analysis request: request id, dataset, the data agent's preliminary findings
#: (analyzers.AnalysisRequest; not imported from there, which imports this module).
Request = tuple[str, DatasetBase, list[PreliminaryFinding]]


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

    def inputs(self, dataset: DatasetBase) -> FleetInputs:
        return inputs_from_dataset(
            dataset,
            analysis_day(dataset),
            self.rules.history_days,
            self.rules.signals.high_priorities,
        )

    def assess(self, dataset: DatasetBase) -> FleetAssessment:
        """The arrays behind the results (one row), e.g. for `revops explain account`."""
        return assess(self.inputs(dataset), self.rules)

    def analyze(
        self, request_id: str, dataset: DatasetBase, findings: list[PreliminaryFinding]
    ) -> AnalysisResults:
        return analysis_results(request_id, self.assess(dataset), 0, self.rules, findings)

    def analyze_batch(self, requests: Sequence[Request]) -> list[AnalysisResults | Exception]:
        """`analyze` of every request, the accounts of one analysis day assessed together:
        the pipeline runs over arrays of accounts and each account's numbers depend on its
        own row only, so the results are `analyze`'s, at a fraction of the per-call cost of
        numpy on one-row arrays. A request that fails gets its exception (the others are not
        affected); a day whose joint assessment fails is analysed request by request."""
        results: list[AnalysisResults | Exception] = [
            RuntimeError("not analysed") for _ in requests
        ]
        by_day: dict[int, list[tuple[int, FleetInputs]]] = {}
        for position, (_, dataset, _) in enumerate(requests):
            try:
                inputs = self.inputs(dataset)
            except Exception as exc:
                results[position] = exc
                continue
            by_day.setdefault(inputs.as_of_day, []).append((position, inputs))
        for group in by_day.values():
            positions = [position for position, _ in group]
            try:
                assessment = assess(concat_inputs([inputs for _, inputs in group]), self.rules)
            except Exception:
                for position in positions:
                    results[position] = self._analyze_alone(requests[position])
                continue
            for row, position in enumerate(positions):
                request_id, _, findings = requests[position]
                try:
                    results[position] = analysis_results(
                        request_id, assessment, row, self.rules, findings
                    )
                except Exception as exc:
                    results[position] = exc
        return results

    def _analyze_alone(self, request: Request) -> AnalysisResults | Exception:
        try:
            return self.analyze(*request)
        except Exception as exc:
            return exc
