"""Datasets of every analysis type, as the data agent builds them, from a generated demo
warehouse (a year of usage, so the series are full size)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from contracts import AnalysisType, AnalyticalDataset, Subject
from contracts.dataset_columns import as_rows
from contracts.trigger import RequestParameters
from demo.seed import seed_warehouse
from services.data_agent.builders import DATASET_BUILDERS, open_opportunities
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.data_agent.warehouse.queries import LIST_ACCOUNTS

AS_OF = date(2026, 11, 1)


def demo_messages(folder: Path, accounts: int = 12, deals: int = 12) -> list[AnalyticalDataset]:
    """A consumption and a renewal-risk dataset per account, a deal-quality one for the first
    `deals` open opportunities; row form, as built before the wire conversion."""
    path = folder / "demo.duckdb"
    seed_warehouse(path, accounts=accounts, days=400, seed=11, as_of=AS_OF)
    subjects: list[tuple[AnalysisType, str, str | None]] = []
    with DuckDBWarehouse(path) as warehouse:
        repository = DatasetRepository(warehouse)
        for row in warehouse.fetch_all(LIST_ACCOUNTS, {"limit": accounts}):
            for kind in (AnalysisType.CONSUMPTION, AnalysisType.RENEWAL_RISK):
                subjects.append((kind, str(row["sf_account_id"]), None))
        for account_id, opportunity_id in open_opportunities(warehouse, repository.stages)[:deals]:
            subjects.append((AnalysisType.DEAL_QUALITY, account_id, opportunity_id))
        return [message(repository, *subject) for subject in subjects]


def message(
    repository: DatasetRepository, kind: AnalysisType, account_id: str, opportunity_id: str | None
) -> AnalyticalDataset:
    parameters = RequestParameters(account_id=account_id, opportunity_id=opportunity_id)
    dataset, collection, findings = DATASET_BUILDERS[kind](repository, parameters)
    return AnalyticalDataset(
        request_id=f"{kind}-{opportunity_id or account_id}",
        analysis_type=kind,
        subject=Subject(account_id=account_id, opportunity_id=opportunity_id),
        requested_at=datetime(2026, 11, 1, 8, tzinfo=UTC),
        data_collection=collection,
        preliminary_findings=findings,
        dataset=as_rows(dataset),
    )
