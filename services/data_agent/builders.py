"""What the data agent does for each analysis type (docs/extending.md).

* `DATASET_BUILDERS`: the warehouse reads behind one subject's dataset, and which subject's
  rows a batch of such datasets reads ahead (one set-based query per table, `reads.py`);
* `SUBJECT_FINDERS`: for a job (`fans_out_to` in `contracts/analysis_types.py`), the subjects
  it fans out to, one child trigger each.

A type in neither is refused (a dead letter naming it), never answered with another type's
dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from contracts.common import AnalysisType
from contracts.trigger import RequestParameters
from services.common.stages import StageRules
from services.data_agent.datasets import DatasetRepository, DatasetResult
from services.data_agent.fleet import fleet_screen
from services.data_agent.renewals import renewing_accounts
from services.data_agent.warehouse import Warehouse
from services.data_agent.warehouse.queries import list_open_opportunities

#: (account id, opportunity id or None) of every subject a job fans out to.
SubjectFinder = Callable[[DatasetRepository], list[tuple[str, str | None]]]


@dataclass(frozen=True)
class DatasetBuilder:
    """One subject's dataset (`build`), and the rows a batch of them reads ahead: a deal's
    (`reads="deal"`: the deal, its account and what they name) or an account's."""

    build: Callable[[DatasetRepository, RequestParameters], DatasetResult]
    reads: Literal["deal", "account"]

    def __call__(self, repository: DatasetRepository, p: RequestParameters) -> DatasetResult:
        return self.build(repository, p)


def reading_ahead(
    repository: DatasetRepository, requests: Iterable[tuple[DatasetBuilder, RequestParameters]]
) -> DatasetRepository:
    """`repository` for a batch of dataset requests: the rows of all their subjects read
    with one set-based query per table; each builder then runs on its own subject's rows.
    A batch of one reads as one subject does (fewer queries than a set-based read)."""
    requests = list(requests)
    if len(requests) < 2:
        return repository
    deals: list[tuple[str | None, str]] = []
    accounts: list[str] = []
    for builder, p in requests:
        if builder.reads == "deal":
            deals.append((p.account_id, p.opportunity_id or ""))
        else:
            accounts.append(p.account_id or "")
    return repository.reading_ahead(deals=deals, accounts=accounts)


def _deal_dataset(repository: DatasetRepository, p: RequestParameters) -> DatasetResult:
    return repository.deal_dataset(p.account_id or "", p.opportunity_id or "")


def _account_dataset(repository: DatasetRepository, p: RequestParameters) -> DatasetResult:
    return repository.account_dataset(p.account_id or "")


deal_dataset = DatasetBuilder(_deal_dataset, reads="deal")
account_dataset = DatasetBuilder(_account_dataset, reads="account")


def open_opportunities(warehouse: Warehouse, stages: StageRules) -> list[tuple[str, str]]:
    """(account id, opportunity id) of every open opportunity that has an account, read in
    chunks. A deal-quality trigger names an account, so deals without one are not reviewed
    here: `revops warehouse check` lists them and `revops explain deal` analyses them."""
    params = {"limit": 100_000_000}
    return [
        (str(row["sf_account_id"]), str(row["opportunity_id"]))
        for chunk in warehouse.fetch_chunks(list_open_opportunities(stages), params)
        for row in chunk
        if row["sf_account_id"]
    ]


def screened_accounts(repository: DatasetRepository) -> list[tuple[str, str | None]]:
    return [(c.account_id, None) for c in fleet_screen(repository.warehouse)]


def reviewed_deals(repository: DatasetRepository) -> list[tuple[str, str | None]]:
    return list(open_opportunities(repository.warehouse, repository.stages))


DATASET_BUILDERS: dict[AnalysisType, DatasetBuilder] = {
    AnalysisType.DEAL_QUALITY: deal_dataset,
    AnalysisType.CONSUMPTION: account_dataset,
    AnalysisType.RENEWAL_RISK: account_dataset,
}

SUBJECT_FINDERS: dict[AnalysisType, SubjectFinder] = {
    AnalysisType.FLEET_SCAN: screened_accounts,
    AnalysisType.DEAL_REVIEW: reviewed_deals,
    AnalysisType.RENEWAL_REVIEW: lambda repository: [
        (account_id, None) for account_id in renewing_accounts(repository.warehouse)
    ],
}
