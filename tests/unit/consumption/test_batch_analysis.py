"""`ConsumptionAnalyzer.analyze_batch`: the accounts of several datasets assessed together
give each dataset exactly what `analyze` gives it alone; a dataset that fails fails alone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts.analysis import AnalysisResults
from contracts.dataset import Dataset, PreliminaryFinding
from services.decision_agent.consumption import analyzer as analyzer_module
from services.decision_agent.consumption.analyzer import ConsumptionAnalyzer, Request
from services.decision_agent.consumption.inputs import FleetInputs
from services.decision_agent.consumption.rule_models import ConsumptionRules
from tests.unit.consumption.factory import AS_OF
from tests.unit.consumption.test_consumption import (
    _mixed_fleet,
    rules,  # noqa: F401  (fixture)
)
from tests.unit.deal_quality.test_trusted import assert_equals_validated
from tests.unit.decision_agent.same_fields import assert_same_fields

GAP = PreliminaryFinding(type="data_gap", description="no billing events")


def _requests() -> list[Request]:
    """Every story and class, tickets, renewals, two analysis days, some with data gaps."""
    datasets = _mixed_fleet()
    earlier = [d.model_copy(update={"as_of": AS_OF - timedelta(days=9)}) for d in datasets[::4]]
    return [(f"req-{k}", d, [GAP] if k % 5 == 0 else []) for k, d in enumerate(datasets + earlier)]


def _dump(result: AnalysisResults | Exception) -> object:
    assert isinstance(result, AnalysisResults), result
    return result.model_dump(mode="json")


def test_batch_equals_one_by_one(rules: ConsumptionRules) -> None:  # noqa: F811
    analyzer = ConsumptionAnalyzer(rules)
    requests = _requests()
    alone = [analyzer.analyze(*request) for request in requests]
    together = analyzer.analyze_batch(requests)
    assert len(together) == len(requests)
    for one, batched in zip(alone, together, strict=True):
        assert_same_fields(_dump(one), _dump(batched))
    # the comparison covers real findings and both analysis days (usage anomaly events: on
    # the generated warehouse, tests/unit/decision_agent/test_batch_decisions.py)
    flags = [f for r in alone for f in r.analysis_results.flags]
    assert {"usage_decline", "usage_spike", "support_escalation", "contract_approaching"} <= {
        f.code for f in flags
    }
    assert len({r.summary.split(" as of ")[1][:10] for r in alone}) == 2


def test_batch_results_equal_their_validated_copies(rules: ConsumptionRules) -> None:  # noqa: F811
    """The report builds its models without validation (services/decision_agent/trusted.py):
    each result holds exactly what validation would have produced."""
    for result in ConsumptionAnalyzer(rules).analyze_batch(_requests()):
        assert isinstance(result, AnalysisResults)
        assert_equals_validated(result)


def test_a_dataset_that_fails_gets_its_error_alone(
    rules: ConsumptionRules,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    analyzer = ConsumptionAnalyzer(rules)
    requests = _requests()[:8]
    broken = requests[3][1].account.sf_account_id
    real_inputs = analyzer.inputs

    def inputs(data: Dataset) -> FleetInputs:
        if data.account.sf_account_id == broken:
            raise ValueError(f"unreadable usage of {broken}")
        return real_inputs(data)

    monkeypatch.setattr(analyzer, "inputs", inputs)
    results = analyzer.analyze_batch(requests)
    assert isinstance(results[3], ValueError) and broken in str(results[3])
    for k, request in enumerate(requests):
        if k != 3:
            assert_same_fields(_dump(analyzer.analyze(*request)), _dump(results[k]))


def test_a_failing_joint_assessment_is_redone_one_by_one(
    rules: ConsumptionRules,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_assess = analyzer_module.assess
    joint_calls = []

    def assess(inputs: FleetInputs, rules: ConsumptionRules) -> object:
        if len(inputs.account_ids) > 1:
            joint_calls.append(len(inputs.account_ids))
            raise MemoryError("no room for the joint arrays")
        return real_assess(inputs, rules)

    monkeypatch.setattr(analyzer_module, "assess", assess)
    analyzer = ConsumptionAnalyzer(rules)
    requests = _requests()[:6]
    results = analyzer.analyze_batch(requests)
    assert joint_calls == [6]
    for request, result in zip(requests, results, strict=True):
        assert_same_fields(_dump(analyzer.analyze(*request)), _dump(result))
