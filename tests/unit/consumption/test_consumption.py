"""Consumption analysis: stories produce the right classes/flags; fleet == per account."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from bench.consumption_fleet.fleet import analyze_fleet
from contracts.analysis import AnalysisResults
from contracts.common import Priority
from contracts.dataset import CustomerClass, Dataset, PreliminaryFinding
from services.common.rulefiles import RuleFileError
from services.common.settings import PROJECT_ROOT
from services.decision_agent.consumption import pipeline
from services.decision_agent.consumption.analyzer import (
    ConsumptionAnalyzer,
    load_consumption_rules,
)
from services.decision_agent.consumption.rule_models import TREND_CLASSES, ConsumptionRules
from tests.unit.consumption.factory import AS_OF, columns, dataset, portfolio

RULES_DIR = PROJECT_ROOT / "services" / "decision_agent" / "rules"


@pytest.fixture(scope="module")
def rules() -> ConsumptionRules:
    return load_consumption_rules(RULES_DIR)


@pytest.fixture(scope="module")
def results(rules: ConsumptionRules) -> dict[str, AnalysisResults]:
    analyzer = ConsumptionAnalyzer(rules)
    return {d.account.sf_account_id: analyzer.analyze("req-1", d, []) for d in portfolio()}


def _codes(result: AnalysisResults) -> set[str]:
    return {f.code for f in result.analysis_results.flags}


def test_stable_commit_customer_is_healthy_and_quiet(results: dict[str, AnalysisResults]) -> None:
    r = results["acc-stable"]
    assert r.analysis_results.scores["churn_risk"] <= 25
    assert r.analysis_results.score_details["churn_risk"].band == "Low"
    assert r.analysis_results.score_details["usage_trend"].band == "Stable"
    assert _codes(r) == set()
    assert (
        r.analysis_results.scores["customer_health"]
        == 100 - r.analysis_results.scores["churn_risk"]
    )


def test_declining_customer_with_tickets_and_renewal_escalates(
    results: dict[str, AnalysisResults],
) -> None:
    r = results["acc-decline"]
    assert {
        "usage_decline",
        "support_escalation",
        "contract_approaching",
        "churn_risk_escalation",
    } <= _codes(r)
    assert r.analysis_results.score_details["churn_risk"].band in ("High", "Critical")
    tickets = next(f for f in r.analysis_results.flags if f.code == "support_escalation")
    assert {e.ref for e in tickets.evidence} == {
        "acc-decline-t0",
        "acc-decline-t1",
        "acc-decline-t2",
    }
    renewal = next(f for f in r.analysis_results.flags if f.code == "contract_approaching")
    assert "Near-term" in renewal.description
    assert renewal.evidence[0].date == (AS_OF + timedelta(days=60)).isoformat()


def test_stop_is_complete_stop_and_immediate_renewal(results: dict[str, AnalysisResults]) -> None:
    r = results["acc-stop"]
    assert r.analysis_results.score_details["usage_trend"].band == "Complete stop"
    decline = next(f for f in r.analysis_results.flags if f.code == "usage_decline")
    assert decline.severity.value == "critical"
    assert "no usage for 40 days" in decline.description
    assert "Immediate" in r.summary


def test_growth_and_plg_upsell(results: dict[str, AnalysisResults]) -> None:
    r = results["acc-growth"]
    assert {"usage_growth", "sustained_growth", "plg_to_commit"} <= _codes(r)
    upsell = next(f for f in r.analysis_results.flags if f.code == "plg_to_commit")
    assert (
        upsell.category.value == "growth_opportunity" and upsell.insight_type == "upsell_candidate"
    )


def test_cost_anomaly_is_critical_without_usage_growth(results: dict[str, AnalysisResults]) -> None:
    r = results["acc-cost"]
    cost = next(f for f in r.analysis_results.flags if f.code == "cost_anomaly")
    assert cost.severity.value == "critical" and cost.insight_type == "cost_anomaly"
    assert "cost_anomaly" not in _codes(results["acc-spike"])  # spend grew with usage


def test_spike_is_detected_by_trend_and_anomaly(results: dict[str, AnalysisResults]) -> None:
    r = results["acc-spike"]
    assert {"usage_spike", "usage_above_commitment"} <= _codes(r)
    assert r.analysis_results.score_details["usage_trend"].band == "Spike"
    above = next(f for f in r.analysis_results.flags if f.code == "usage_above_commitment")
    # One sentence, said once: "Last 30 days' spend N USD is P% of the monthly commitment".
    assert above.description.startswith("Last 30 days' spend ")
    assert above.description.count("spend") == 1


def test_single_user_plg_account_has_engagement_risk(results: dict[str, AnalysisResults]) -> None:
    r = results["acc-plg-single"]
    assert "engagement_drop" in _codes(r)
    team = next(
        f for f in r.analysis_results.score_details["churn_risk"].factors if f.factor == "team"
    )
    assert team.points == team.possible  # single user after 60+ days: full team risk


def test_recommendations_are_ranked_with_stable_ids(results: dict[str, AnalysisResults]) -> None:
    recs = results["acc-decline"].recommendations
    assert [r.id for r in recs] == [f"rec-{k}" for k in range(1, len(recs) + 1)]
    ranks = [list(Priority).index(r.priority) for r in recs]
    assert ranks == sorted(ranks) and recs[0].priority == Priority.CRITICAL
    assert {r.assignee for r in recs} <= {
        "customer_success",
        "account_executive",
        "support",
        "revops",
    }
    again = ConsumptionAnalyzer(load_consumption_rules(RULES_DIR)).analyze(
        "req-1", portfolio()[1], []
    )
    assert again == results["acc-decline"]


def test_data_gap_lowers_confidence(rules: ConsumptionRules) -> None:
    data = portfolio()[1]
    gap = PreliminaryFinding(type="data_gap", description="no billing events")
    plain = ConsumptionAnalyzer(rules).analyze("r", data, [])
    gapped = ConsumptionAnalyzer(rules).analyze("r", data, [gap])
    assert all(
        g.confidence < p.confidence
        for g, p in zip(gapped.analysis_results.flags, plain.analysis_results.flags, strict=True)
    )
    assert "no billing events" in gapped.summary


def _mixed_fleet() -> list[Dataset]:
    return portfolio() + [
        dataset(
            f"acc-x{k}",
            list(CustomerClass)[k % 3],
            ["stable", "decline", "growth", "stop", "spike", "cost"][k % 6],
            seed=100 + k,
            tickets=k % 4,
            renewal_in_days=[20, 80, 150, None][k % 4],
            level=10 ** (2 + k % 4),
        )
        for k in range(24)
    ]


@pytest.mark.parametrize("block_accounts", [4096, 5])
def test_fleet_equals_per_account(
    rules: ConsumptionRules, monkeypatch: pytest.MonkeyPatch, block_accounts: int
) -> None:
    """Also with blocks of 5 accounts (several blocks, scored by parallel threads)."""
    monkeypatch.setattr(pipeline, "BLOCK_ACCOUNTS", block_accounts)
    datasets = _mixed_fleet()
    fleet = analyze_fleet(columns(datasets), AS_OF, rules)
    analyzer = ConsumptionAnalyzer(rules)
    index = {a: k for k, a in enumerate(fleet.inputs.account_ids)}
    for d in datasets:
        alone = analyzer.assess(d)
        k = index[d.account.sf_account_id]
        np.testing.assert_array_equal(
            fleet.now.trends.trend_class[k], alone.now.trends.trend_class[0]
        )
        assert fleet.risk[k] == alone.risk[0] and fleet.health[k] == alone.health[0]
        assert fleet.escalate[k] == alone.escalate[0]
        assert {c for c, v in fleet.flags.items() if v[k]} == {
            c for c, v in alone.flags.items() if v[0]
        }
        for metric, scores in fleet.anomalies.items():
            np.testing.assert_array_equal(scores.score[k], alone.anomalies[metric].score[0])
            np.testing.assert_array_equal(scores.reason[k], alone.anomalies[metric].reason[0])
    classes = {TREND_CLASSES[c] for c in fleet.now.trends.trend_class[:, 0]}
    assert {"Stable", "Declining", "Complete stop", "Growing", "Spike"} <= classes


def test_usage_rows_by_account_position_equal_rows_by_id(rules: ConsumptionRules) -> None:
    """The warehouse loader's form (integer account positions, day numbers, float32, rows
    in any order) gives the same assessment as account-id strings and dates."""
    datasets = _mixed_fleet()[::-1]  # account_ids not sorted: positions must be re-ranked
    by_id = columns(datasets)
    position = {a: k for k, a in enumerate(by_id.account_ids)}
    shuffle = np.random.default_rng(3).permutation(len(by_id.usage_date))
    by_position = replace(
        by_id,
        usage_account=np.array([position[a] for a in by_id.usage_account], np.int32)[shuffle],
        usage_date=np.asarray(by_id.usage_date, "datetime64[D]").astype(np.int32)[shuffle],
        usage_values=np.asarray(by_id.usage_values, np.float32)[shuffle],
    )
    a = analyze_fleet(by_id, AS_OF, rules)
    b = analyze_fleet(by_position, AS_OF, rules)
    assert a.inputs.account_ids == b.inputs.account_ids
    np.testing.assert_array_equal(a.inputs.usage, b.inputs.usage)
    np.testing.assert_array_equal(a.risk, b.risk)
    np.testing.assert_array_equal(a.previous.risk, b.previous.risk)
    assert all(np.array_equal(a.flags[c], b.flags[c]) for c in a.flags)


def test_rule_file_problems_name_file_and_line(tmp_path: Path) -> None:
    text = (RULES_DIR / "consumption.yaml").read_text()
    broken = text.replace("usage: {weight: 40,", "usage: {weight: 45,", 1)
    (tmp_path / "consumption.yaml").write_text(broken)
    with pytest.raises(RuleFileError) as error:
        load_consumption_rules(tmp_path)
    assert "consumption.yaml:" in str(error.value) and "not 100" in str(error.value)
