"""The backtest sees each deal only as it was on its scoring date.

Changing a deal's final record (amount, close date) cannot change its backtest score; a
field filled only on won deals is named by the leakage guard; a crowded band is warned
about; --fit reports a lift and writes a rubric file only when asked."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from demo.seed import seed_warehouse
from services.cli.backtest.command import backtest_app
from services.cli.backtest.run import BacktestReport, run_backtest
from services.common.rulefiles import load_rule_file
from services.common.settings import get_settings
from services.common.stages import load_stage_model
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.data_agent.warehouse.loader import LoadOptions, import_files
from services.data_agent.warehouse.mapping import load_mapping
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer
from services.decision_agent.deal_quality.rule_models import BacktestRules, OverallRules
from tests.unit.warehouse import exports as E

RULES = BacktestRules(kind="deal_backtest", version=1, bootstrap_resamples=200)


def backtest(
    path: Path, analyzer: DealQualityAnalyzer, rules: BacktestRules = RULES
) -> BacktestReport:
    with DuckDBWarehouse(path) as warehouse:
        return run_backtest(warehouse, analyzer, load_stage_model(), rules)


def edit(path: Path, *statements: str) -> None:
    con = duckdb.connect(str(path))
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    seed_warehouse(path, accounts=40, days=120, seed=3, as_of=date(2026, 11, 1))
    return path


@pytest.fixture(scope="module")
def salesforce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An import whose history records amount, probability and close date."""
    folder = tmp_path_factory.mktemp("sf")
    facts = E.salesforce(folder / "export")
    dest = folder / "wh.duckdb"
    import_files(
        facts.folder, load_mapping("salesforce"), dest, LoadOptions(quarantine=folder / "q")
    )
    return dest


def copy(path: Path, tmp_path: Path) -> Path:
    target = tmp_path / path.name
    shutil.copy(path, target)
    return target


def scores(report: BacktestReport) -> dict[str, tuple[int, dict[str, int]]]:
    return {d.opportunity_id: (d.score, d.sub_scores) for d in report.deals}


@pytest.mark.parametrize("warehouse", ["demo", "salesforce"])
def test_final_amount_and_close_date_do_not_change_the_score(
    warehouse: str, request: pytest.FixtureRequest, analyzer: DealQualityAnalyzer, tmp_path: Path
) -> None:
    path = copy(request.getfixturevalue(warehouse), tmp_path)
    before = backtest(path, analyzer)
    assert len(before.deals) >= 5
    edit(
        path,
        # the final record: amounts multiplied, close dates moved a year, for every deal
        "UPDATE opportunity_d SET amount = COALESCE(amount, 1) * 37, "
        "close_date = close_date + INTERVAL 365 DAY, probability = 100",
    )
    after = backtest(path, analyzer)
    assert scores(after) == scores(before)


def test_amount_and_close_date_come_from_history(
    salesforce: Path, analyzer: DealQualityAnalyzer
) -> None:
    """On the scoring date the deal had its first amount and the close date then planned,
    not the final ones (the final record says 100,000 and its actual close date)."""
    with DuckDBWarehouse(salesforce) as warehouse:
        repository = DatasetRepository(warehouse)
        rows = warehouse.connection.execute(
            "SELECT opportunity_id, amount, close_date, created_at_ts FROM opportunity_d "
            "ORDER BY opportunity_id LIMIT 1"
        ).fetchall()
        oid, final_amount, final_close, created = rows[0]
        dataset, _, findings = repository.deal_dataset(None, oid, created.date())
    assert dataset.opportunity is not None
    assert (final_amount, dataset.opportunity.amount) == (100_000.0, 50_000.0)
    assert (
        dataset.opportunity.close_date is not None and dataset.opportunity.close_date < final_close
    )
    assert dataset.opportunity.stage_name == "Opportunity Created"
    assert dataset.opportunity.next_step is None  # no history: left out
    assert any("fields without history are left out" in f.description for f in findings)


def test_a_field_only_won_deals_have_is_named(
    demo: Path, analyzer: DealQualityAnalyzer, tmp_path: Path
) -> None:
    clean = backtest(demo, analyzer)
    assert not [w for w in clean.warnings if "opportunity.amount" in w]
    path = copy(demo, tmp_path)
    edit(
        path,
        # an "amount history" that exists only for won deals, as some exports have it
        "UPDATE opportunity_stage_f SET amount = 250000 WHERE opportunity_id IN (SELECT "
        "opportunity_id FROM opportunity_d WHERE stage_name = 'Closed Won')",
    )
    leaky = backtest(path, analyzer)
    (warning,) = [w for w in leaky.warnings if w.startswith("opportunity.amount ")]
    assert (
        "almost separates won from lost on its own (AUC 1.00; present on 100% of won and "
        "0% of lost deals)" in warning
    )
    assert "amount" in leaky.history_fields and "amount" not in leaky.left_out_fields


def test_a_crowded_band_is_warned_about(demo: Path, analyzer: DealQualityAnalyzer) -> None:
    strict = RULES.model_copy(update={"dominant_band_share": 0.2})
    report = backtest(demo, analyzer, strict)
    crowded = max(report.bands, key=lambda b: b.deals)
    share = crowded.deals / len(report.deals)
    assert (
        f"{share:.0%} of the deals fall in one band ({crowded.band}, {crowded.min_score}-"
        f"{crowded.max_score}): the score hardly tells them apart"
    ) in report.warnings
    relaxed = backtest(demo, analyzer, RULES.model_copy(update={"dominant_band_share": 1.0}))
    assert not [w for w in relaxed.warnings if "fall in one band" in w]


@pytest.fixture
def use_demo(demo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("REVOPS_WAREHOUSE_PATH", str(demo))
    get_settings.cache_clear()
    yield demo
    get_settings.cache_clear()


def test_fit_reports_the_lift_and_writes_only_when_asked(use_demo: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(get_settings().rules_dir, rules)
    (rules / "backtest.yaml").write_text(
        "kind: deal_backtest\nversion: 1\nbootstrap_resamples: 200\n"
        "fit: {folds: 3, min_train_deals: 10}\n"
    )
    before = {p.name: p.read_bytes() for p in rules.iterdir()}
    result = CliRunner().invoke(backtest_app, ["deals", "--fit", "--rules-dir", str(rules)])
    assert result.exit_code == 0, result.output
    assert (
        "Fitted weights (logistic regression on the sub-scores, time-ordered folds):"
        in result.output
    )
    assert "lift of the fitted weights over the hand-set ones:" in result.output
    assert {p.name: p.read_bytes() for p in rules.iterdir()} == before  # nothing written
    target = tmp_path / "fitted.yaml"
    written = CliRunner().invoke(
        backtest_app, ["deals", "--fit", "--rules-dir", str(rules), "--write-fitted", str(target)]
    )
    assert written.exit_code == 0, written.output
    fitted = load_rule_file(target, OverallRules)
    assert sum(fitted.weights.values()) == pytest.approx(fitted.total)
    assert all(w >= 0 for w in fitted.weights.values())
    assert {p.name: p.read_bytes() for p in rules.iterdir()} == before
    refused = CliRunner().invoke(backtest_app, ["deals", "--write-fitted", str(target)])
    assert refused.exit_code != 0 and "--write-fitted needs --fit" in refused.output
