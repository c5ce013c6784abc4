"""On a generated demo warehouse: explain CLI, backtest (AUC + calibration), ground truth."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from demo.seed import load_ground_truth, seed_warehouse
from services.cli.backtest.command import backtest_app
from services.cli.backtest.run import run_backtest
from services.cli.backtest.stats import _resampled_auc, auc, bootstrap_aucs
from services.cli.explain_deal import explain_deal_app
from services.cli.rules import rules_app
from services.common.settings import get_settings
from services.common.stages import load_stage_model
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer
from services.decision_agent.deal_quality.rule_models import BacktestRules
from tests.unit.deal_quality.test_trusted import assert_equals_validated

AS_OF = date(2026, 11, 1)


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wh") / "demo.duckdb"
    seed_warehouse(path, accounts=40, days=365, seed=5, as_of=AS_OF)
    return path


@pytest.fixture
def use_warehouse(warehouse_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("REVOPS_WAREHOUSE_PATH", str(warehouse_path))
    get_settings.cache_clear()
    yield warehouse_path
    get_settings.cache_clear()


def truth(path: Path) -> dict:
    return load_ground_truth(path.with_name(path.name + ".ground_truth.json"))["opportunities"]


def analyse_open_deals(path: Path, analyzer: DealQualityAnalyzer) -> dict:
    results = {}
    with DuckDBWarehouse(path) as warehouse:
        repository = DatasetRepository(warehouse)
        for opp_id, facts in truth(path).items():
            if not facts["is_open"]:
                continue
            dataset, _, findings = repository.deal_dataset(facts["sf_account_id"], opp_id)
            results[opp_id] = analyzer.analyze("gt", dataset, findings)
    return results


def test_ground_truth_flags_are_found(warehouse_path: Path, analyzer: DealQualityAnalyzer) -> None:
    facts = truth(warehouse_path)
    results = analyse_open_deals(warehouse_path, analyzer)
    checked = {"zero": 0, "competitor": 0}
    for opp_id, result in results.items():
        codes = {f.code for f in result.analysis_results.flags}
        fact = facts[opp_id]
        assert ("zero_customer_calls" in codes) == fact["no_customer_calls"], opp_id
        checked["zero"] += fact["no_customer_calls"]
        if fact["competitor_mentioned_in_calls"]:
            checked["competitor"] += 1
            threat = next(f for f in result.analysis_results.flags if f.code == "competitor_named")
            assert fact["competitor"].lower() in threat.description.lower()
            assert any(e.source == "gong_call_f" for e in threat.evidence)
        if fact["stage_regression"]:
            assert "stage_regression" in codes, opp_id
    assert checked["zero"] > 0 and checked["competitor"] > 0


RULES = BacktestRules(kind="deal_backtest", version=1, bootstrap_resamples=200)


def test_backtest_scores_history_as_it_stood(
    warehouse_path: Path, analyzer: DealQualityAnalyzer
) -> None:
    with DuckDBWarehouse(warehouse_path) as warehouse:
        report = run_backtest(warehouse, analyzer, load_stage_model(), RULES)
    assert len(report.deals) >= 10
    assert all(d.scored_as_of == d.closed_at - timedelta(days=30) for d in report.deals)
    # the demo's stage history has close dates, not amounts or probabilities
    assert report.history_fields == ["close_date", "stage_name"]
    assert {"amount", "probability", "next_step", "metrics"} <= set(report.left_out_fields)
    score = report.auc["deal_quality"]
    assert score.value is not None and score.low is not None and score.high is not None
    assert score.low <= score.value <= score.high
    assert set(report.auc) >= {"owner_win_rate", "time_in_stage", "stage_only"}
    assert sum(b.deals for b in report.bands) == len(report.deals)
    with DuckDBWarehouse(warehouse_path) as warehouse:
        middle = report.deals[len(report.deals) // 2].closed_at
        later = run_backtest(warehouse, analyzer, load_stage_model(), RULES, since=middle)
        earlier = run_backtest(warehouse, analyzer, load_stage_model(), RULES, until=middle)
    assert 0 < len(later.deals) < len(report.deals)
    assert all(d.closed_at >= middle for d in later.deals)
    assert all(d.closed_at <= middle for d in earlier.deals)


def test_backtest_cli_prints_auc_baselines_and_calibration(use_warehouse: Path) -> None:
    result = CliRunner().invoke(backtest_app, ["deals"])
    assert result.exit_code == 0, result.output
    assert "ROC AUC (won vs lost) on the same deals, with bootstrap CI:" in result.output
    assert "baseline: owner win rate (deals closed before the scoring date)" in result.output
    assert "baseline: stage only" in result.output and "baseline: time in stage" in result.output
    assert "Left out (no history, so unknown on the scoring date): amount" in result.output
    assert "win rate" in result.output and "Strong" in result.output
    as_json = CliRunner().invoke(backtest_app, ["deals", "--json", "--since", "2026-06-01"])
    payload = json.loads(as_json.stdout)  # progress goes to stderr, the report to stdout
    assert all(d["closed_at"] >= "2026-06-01" for d in payload["deals"])
    nothing = CliRunner().invoke(backtest_app, ["deals", "--since", "2100-01-01"])
    assert nothing.exit_code == 1 and "nothing to backtest" in nothing.output
    # progress goes to stderr: the count of deals scored (the JSON report is on stdout alone)
    assert re.search(r"backtest deals: [\d,]+ deals in ", as_json.stderr), as_json.stderr


def test_explain_deal_cli(use_warehouse: Path) -> None:
    opp_id = next(iter(truth(use_warehouse)))
    text = CliRunner().invoke(explain_deal_app, ["deal", opp_id])
    assert text.exit_code == 0, text.output
    assert "deal_quality breakdown" in text.output and "Recommendations" in text.output
    raw = CliRunner().invoke(explain_deal_app, ["deal", opp_id, "--json"])
    assert json.loads(raw.output)["subject"]["opportunity_id"] == opp_id
    missing = CliRunner().invoke(explain_deal_app, ["deal", "NOPE"])
    assert missing.exit_code == 1


def test_rules_validate_cli(tmp_path: Path) -> None:
    ok = CliRunner().invoke(rules_app, ["validate", str(get_settings().rules_dir)])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: deal_quality_overall\nversion: 1\ntotal: 100\nweights: {icp_fit: 50}\n"
        "bands:\n  - {name: All, min: 0, max: 100}\n"
    )
    result = CliRunner().invoke(rules_app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3:1: total: total is 100 but weights add up to 50" in result.output


def test_auc_matches_pairwise_definition() -> None:
    scores = [10.0, 20, 20, 35, 50, 50, 80]
    won = [False, False, True, False, True, False, True]
    wins = [s for s, w in zip(scores, won, strict=True) if w]
    losses = [s for s, w in zip(scores, won, strict=True) if not w]
    pairs = [(p, n) for p in wins for n in losses]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert auc(scores, won) == pytest.approx(expected)
    # the bootstrap's vectorised rank sum gives the same number (won deals first)
    ordered = np.array([wins + losses])
    assert _resampled_auc(ordered, len(wins))[0] == pytest.approx(expected)
    assert auc([1, 2], [True, True]) is None


def test_paired_aucs_of_one_outcome_are_undefined_not_missing() -> None:
    """Every deal won (a small HubSpot export did this): the paired difference the report
    prints is there, undefined, like the AUCs themselves (it was a KeyError)."""
    scorers = {"deal_quality": [1.0, 2.0, 3.0], "stage_only": [10.0, 20.0, 10.0]}
    got = bootstrap_aucs(
        scorers, [True, True, True], resamples=50, confidence=0.9, seed=1, versus="stage_only"
    )
    assert set(got) == {"deal_quality", "stage_only", "deal_quality - stage_only"}
    assert all(i.value is None and i.low is None and i.high is None for i in got.values())


def test_every_warehouse_deal_result_equals_its_validated_copy(
    warehouse_path: Path, analyzer: DealQualityAnalyzer
) -> None:
    """Results are built without validation (services.decision_agent.trusted); on every
    generated deal re-validating them changes nothing."""
    checked = 0
    with DuckDBWarehouse(warehouse_path) as warehouse:
        repository = DatasetRepository(warehouse)
        for opp_id, facts in truth(warehouse_path).items():
            dataset, _, findings = repository.deal_dataset(facts["sf_account_id"], opp_id)
            assert_equals_validated(analyzer.analyze("gt", dataset, findings))
            checked += 1
    assert checked >= 40
