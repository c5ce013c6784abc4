"""Deals and an account from a small generated warehouse, analysed deterministically."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from contracts.analysis import AnalysisResults
from contracts.dataset import DatasetBase, PreliminaryFinding
from demo.seed import seed_warehouse
from services.common.settings import Settings
from services.data_agent.datasets import DatasetRepository
from services.data_agent.fleet import fleet_screen
from services.data_agent.warehouse import DuckDBWarehouse
from services.data_agent.warehouse.queries import LIST_OPEN_OPPORTUNITIES
from services.decision_agent.consumption.analyzer import ConsumptionAnalyzer, load_consumption_rules
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer, load_deal_rules


@dataclass
class Case:
    dataset: DatasetBase
    findings: list[PreliminaryFinding]
    result: AnalysisResults  # the deterministic analysis


@dataclass
class Cases:
    deal: Case  # an open deal with several customer calls and recommendations
    account: Case  # a flagged account
    warehouse: Path


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cases]:
    path = tmp_path_factory.mktemp("ai-warehouse") / "demo.duckdb"
    seed_warehouse(path, accounts=16, days=150, seed=11, as_of=date(2026, 11, 1))
    rules = Settings().rules_dir
    deals = DealQualityAnalyzer(load_deal_rules(rules))
    accounts = ConsumptionAnalyzer(load_consumption_rules(rules))
    with DuckDBWarehouse(path) as warehouse:
        repository = DatasetRepository(warehouse)
        deal = None
        for row in warehouse.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": 100}):
            dataset, _, findings = repository.deal_dataset(
                str(row["sf_account_id"]), str(row["opportunity_id"])
            )
            result = deals.analyze("ai-deal", dataset, findings)
            if len(dataset.calls) >= 2 and result.recommendations and result.risk_mitigations:
                deal = Case(dataset, findings, result)
                break
        assert deal is not None, "the generated warehouse has no deal with calls and risks"
        # an account other than the deal's: its calls were never part of the deal's prompts
        account_id = next(
            c.account_id
            for c in fleet_screen(warehouse)
            if c.account_id != deal.dataset.account.sf_account_id
        )
        dataset, _, findings = repository.account_dataset(account_id)
        account = Case(dataset, findings, accounts.analyze("ai-account", dataset, findings))
    yield Cases(deal, account, path)
