"""On a generated demo warehouse: explain CLI, backtest (AUC + calibration), ground truth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.common.settings import get_settings
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.data_agent.warehouse.generator.seed import load_ground_truth, seed_warehouse
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer
from services.decision_agent.deal_quality.backtest import backtest_app, roc_auc, run_backtest
from services.decision_agent.deal_quality.cli import explain_deal_app
from services.decision_agent.rules.cli import rules_app
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


def test_backtest_separates_won_from_lost(
    warehouse_path: Path, analyzer: DealQualityAnalyzer
) -> None:
    with DuckDBWarehouse(warehouse_path) as warehouse:
        report = run_backtest(warehouse, analyzer)
    assert len(report.deals) >= 10
    assert report.auc is not None and report.auc > 0.6
    assert sum(b.deals for b in report.bands) == len(report.deals)
    with DuckDBWarehouse(warehouse_path) as warehouse:
        later = run_backtest(
            warehouse, analyzer, since=report.deals[len(report.deals) // 2].closed_at
        )
    assert 0 < len(later.deals) < len(report.deals)


def test_backtest_cli_prints_auc_and_calibration(use_warehouse: Path) -> None:
    result = CliRunner().invoke(backtest_app, ["deals"])
    assert result.exit_code == 0, result.output
    assert "ROC AUC (won vs lost): 0." in result.output
    assert "win rate" in result.output and "Strong" in result.output
    as_json = CliRunner().invoke(backtest_app, ["deals", "--json", "--since", "2026-06-01"])
    payload = json.loads(as_json.stdout)  # progress goes to stderr, the report to stdout
    assert all(d["closed_at"] >= "2026-06-01" for d in payload["deals"])
    scored = len(payload["deals"]) + len(payload["skipped"])
    assert f"backtest deals: {scored} deals in " in as_json.stderr


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


def test_roc_auc_matches_pairwise_definition() -> None:
    scores = [10.0, 20, 20, 35, 50, 50, 80]
    won = [False, False, True, False, True, False, True]
    wins = [s for s, w in zip(scores, won, strict=True) if w]
    losses = [s for s, w in zip(scores, won, strict=True) if not w]
    pairs = [(p, n) for p in wins for n in losses]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert roc_auc(scores, won) == pytest.approx(expected)
    assert roc_auc([1, 2], [True, True]) is None


def test_every_warehouse_deal_result_equals_its_validated_copy(
    warehouse_path: Path, analyzer: DealQualityAnalyzer
) -> None:
    """Results are built without validation (deal_quality.trusted); on every generated deal
    re-validating them changes nothing."""
    checked = 0
    with DuckDBWarehouse(warehouse_path) as warehouse:
        repository = DatasetRepository(warehouse)
        for opp_id, facts in truth(warehouse_path).items():
            dataset, _, findings = repository.deal_dataset(facts["sf_account_id"], opp_id)
            assert_equals_validated(analyzer.analyze("gt", dataset, findings))
            checked += 1
    assert checked >= 40
