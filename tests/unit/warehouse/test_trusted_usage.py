"""The data agent's fast path (usage read as columns from the warehouse, no model per day,
no second validation) produces what the validated path produced.

On the generated warehouse, for every account on three days: the usage columns equal, byte
for byte, those of the validated path (rows validated as `UsageDay` by pydantic, converted to
columns, the columns validated as `UsageColumns`); every dataset the repository builds is
accepted unchanged by the validating reader and by `to_columnar`. Bad warehouse values are
refused with the account and the column named.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from contracts import AnalysisType, AnalyticalDataset, Subject
from contracts.dataset import DataCollection
from contracts.dataset_columns import (
    ColumnarAnalyticalDataset,
    ColumnarDataset,
    UsageColumns,
    as_rows,
    to_columnar,
)
from contracts.series import USAGE_METRICS, DatasetFormatError, UsageDay, UsageSeries
from services.data_agent.datasets import DatasetRepository, UnknownSubjectError
from services.data_agent.reads import PointReads, Window
from services.data_agent.warehouse.base import Columns, Params, rows_to_columns
from services.data_agent.warehouse.convert import to_usage_series
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
from services.data_agent.warehouse.queries import USAGE_BY_ACCOUNT, Query

from .conftest import AS_OF, Demo

DAYS = [AS_OF, AS_OF - timedelta(days=45), AS_OF - timedelta(days=210)]
_USAGE_DAYS = TypeAdapter(list[UsageDay])


def validated_usage(rows: list[dict[str, Any]]) -> UsageColumns:
    """The validated path: a `UsageDay` per row (NULL counts as zero), then the columns
    validated value by value."""
    days = _USAGE_DAYS.validate_python(
        [{k: 0 if row[k] is None else row[k] for k in UsageDay.model_fields} for row in rows]
    )
    return UsageColumns(**UsageSeries.from_rows(days).to_columns())


@pytest.fixture(scope="module")
def repository(demo: Demo) -> DatasetRepository:
    return DatasetRepository(demo.warehouse)


def accounts(demo: Demo) -> list[str]:
    return sorted(demo.truth["accounts"])


@pytest.mark.parametrize("day", DAYS)
def test_usage_columns_equal_the_validated_path(
    demo: Demo, repository: DatasetRepository, day: date
) -> None:
    reads = PointReads(demo.warehouse, Window(day), repository.rules, repository.stages)
    compared = 0
    for account_id in accounts(demo):
        params = {"account_id": account_id, "after_date": reads.usage_after, "as_of": day}
        rows = demo.warehouse.fetch_all(USAGE_BY_ACCOUNT, params)
        fast = UsageColumns.model_construct(**reads.usage(account_id).to_columns())
        assert fast.model_dump_json() == validated_usage(rows).model_dump_json(), account_id
        compared += bool(rows)
    assert compared >= len(accounts(demo)) // 2


def message_of(dataset: ColumnarDataset) -> ColumnarAnalyticalDataset:
    return ColumnarAnalyticalDataset(
        schema_version=2,
        request_id="req-1",
        analysis_type=AnalysisType.CONSUMPTION,
        subject=Subject(account_id=dataset.account.sf_account_id),
        data_collection=DataCollection(),
        dataset=dataset,
    )


@pytest.mark.parametrize("day", [DAYS[0], DAYS[2]])
def test_datasets_pass_the_validating_paths_unchanged(
    demo: Demo, repository: DatasetRepository, day: date
) -> None:
    """The validating reader (what a consumer of another service does) and `to_columnar`
    (the producer's validated conversion of the row form) give back the same bytes."""
    built: list[ColumnarDataset] = []
    for account_id in accounts(demo):
        built.append(repository.account_dataset(account_id, day)[0])
    for opportunity_id, truth in sorted(demo.truth["opportunities"].items()):
        try:
            built.append(repository.deal_dataset(truth["sf_account_id"], opportunity_id, day)[0])
        except UnknownSubjectError:
            continue
    assert len(built) > len(accounts(demo))
    assert any(d.usage.days >= 150 for d in built), "no dataset with months of usage"
    for dataset in built:
        fast = message_of(dataset)
        wire = fast.model_dump_json()
        assert ColumnarAnalyticalDataset.model_validate_json(wire).model_dump_json() == wire
        header = fast.model_dump(exclude={"dataset", "schema_version"})
        rows = AnalyticalDataset(**header, dataset=as_rows(dataset))
        assert to_columnar(rows).model_dump_json() == wire


def usage_row(day: date, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"sf_account_id": "001A", "usage_date": day}
    row.update({m: 1.0 for m in USAGE_METRICS})
    row.update(values)
    return row


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"cost_usd": "lots"}, r"usage of account '001A': cost_usd: could not convert string"),
        ({"fbu": float("inf")}, r"usage of account '001A': fbu is infinite"),
        ({"usage_date": None}, r"usage of account '001A': a usage_date is not a date"),
        ({"usage_date": "2025-06-01"}, r"usage of account '001A': a usage_date is not a date"),
    ],
)
def test_bad_warehouse_values_are_refused(bad: dict[str, Any], message: str) -> None:
    rows = [usage_row(date(2025, 6, 1)), usage_row(date(2025, 6, 2), **bad)]
    with pytest.raises(DatasetFormatError, match=message):
        to_usage_series(rows_to_columns(rows), "001A")


def test_nulls_count_as_zero_and_missing_days_as_gaps() -> None:
    rows = [usage_row(date(2025, 6, 1), query_count=None), usage_row(date(2025, 6, 3))]
    series = to_usage_series(rows_to_columns(rows), "001A")
    assert series.start == date(2025, 6, 1) and series.days == 3
    assert series.metric("query_count").tolist()[0] == 0.0
    assert series.present.tolist() == [True, False, True]
    assert UsageColumns.model_construct(**series.to_columns()).model_dump_json() == (
        validated_usage(rows).model_dump_json()
    )


def test_two_rows_for_one_day_are_refused() -> None:
    rows = [usage_row(date(2025, 6, 1)), usage_row(date(2025, 6, 1))]
    with pytest.raises(DatasetFormatError, match="usage has two rows for 2025-06-01"):
        to_usage_series(rows_to_columns(rows), "001A")


class InfiniteCost(DuckDBWarehouse):
    """The demo warehouse, with an infinite cost on every usage day."""

    def fetch_columns(self, query: Query, params: Params | None = None) -> Columns:
        columns = super().fetch_columns(query, params)
        if len(columns.get("cost_usd", ())):
            columns["cost_usd"] = [float("-inf")] * len(columns["cost_usd"])
        return columns


def test_an_infinite_value_in_the_warehouse_fails_that_dataset(demo: Demo) -> None:
    """A dataset the data agent cannot put on the wire is an error for its subject (the
    runtime dead-letters that record), never a document the next stage would refuse."""
    with InfiniteCost(demo.path) as warehouse:
        repository = DatasetRepository(warehouse)
        with pytest.raises(DatasetFormatError, match="cost_usd is infinite"):
            repository.account_dataset(accounts(demo)[0])
        # In a batch read each account's dataset fails on its own (the read itself succeeds,
        # so the other subjects of a batch would go on).
        batch = repository.reading_ahead(accounts=accounts(demo)[:3])
        for account_id in accounts(demo)[:3]:
            with pytest.raises(DatasetFormatError, match=f"{account_id}.*cost_usd is infinite"):
                batch.account_dataset(account_id)
