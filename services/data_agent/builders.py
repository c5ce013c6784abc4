"""What the data agent does for each analysis type (docs/extending.md).

* `DATASET_BUILDERS`: the warehouse reads behind one subject's dataset;
* `SUBJECT_FINDERS`: for a job (`fans_out_to` in `contracts/analysis_types.py`), the subjects
  it fans out to, one child trigger each.

A type in neither is refused (a dead letter naming it), never answered with another type's
dataset.
"""

from __future__ import annotations

from collections.abc import Callable

from contracts.common import AnalysisType
from contracts.trigger import RequestParameters
from services.common.stages import StageRules
from services.data_agent.datasets import DatasetRepository, DatasetResult
from services.data_agent.fleet import fleet_screen
from services.data_agent.renewals import renewing_accounts
from services.data_agent.warehouse import Warehouse
from services.data_agent.warehouse.queries import list_open_opportunities

DatasetBuilder = Callable[[DatasetRepository, RequestParameters], DatasetResult]
#: (account id, opportunity id or None) of every subject a job fans out to.
SubjectFinder = Callable[[DatasetRepository], list[tuple[str, str | None]]]


def deal_dataset(repository: DatasetRepository, p: RequestParameters) -> DatasetResult:
    return repository.deal_dataset(p.account_id or "", p.opportunity_id or "")


def account_dataset(repository: DatasetRepository, p: RequestParameters) -> DatasetResult:
    return repository.account_dataset(p.account_id or "")


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
