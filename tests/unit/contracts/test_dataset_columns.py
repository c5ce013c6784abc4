"""The columnar wire form of datasets (schema_version 2): rows -> columns -> view keeps every
value and date, the producer validates once, the reader refuses what it cannot read."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts import AnalyticalDataset
from contracts.dataset import Account, Dataset, UsageDay
from contracts.dataset_columns import (
    DATASET_SCHEMA_VERSION,
    ColumnarAnalyticalDataset,
    ColumnarDataset,
    UsageColumns,
    read_dataset,
    to_columnar,
)
from contracts.series import USAGE_METRICS, DatasetFormatError, UsageSeries
from demo.datasets import demo_messages
from services.common.messages import encode


@pytest.fixture(scope="module")
def messages(tmp_path_factory: pytest.TempPathFactory) -> list[AnalyticalDataset]:
    found = demo_messages(tmp_path_factory.mktemp("wire-demo"))
    assert any(len(m.dataset.usage) >= 300 for m in found), "no dataset with a year of usage"
    assert any(m.dataset.billing for m in found), "no dataset with billing events"
    return found


def on_the_wire(message: AnalyticalDataset) -> dict[str, Any]:
    """The payload a consumer parses: the converted message through JSON bytes."""
    parsed: dict[str, Any] = orjson.loads(encode(to_columnar(message)))
    return parsed


def test_rows_columns_view_round_trip_on_demo_datasets(
    messages: list[AnalyticalDataset],
) -> None:
    for message in messages:
        rows = message.dataset
        read = read_dataset(on_the_wire(message))
        assert isinstance(read, ColumnarAnalyticalDataset)
        view = read.dataset.usage_series()
        present = view.present_index().tolist()
        assert len(present) == len(rows.usage)
        for index, row in zip(present, rows.usage, strict=True):
            assert view.date_at(index) == row.usage_date
            for metric in USAGE_METRICS:
                assert view.metric(metric)[index] == getattr(row, metric), (row, metric)
        assert view.to_rows() == rows.usage
        assert read.dataset.billing_series().to_events() == rows.billing
        # everything that is not a series is exactly what was built
        entities = set(type(read.dataset).model_fields) - {"usage", "billing"}
        assert read.dataset.model_dump(include=entities) == rows.model_dump(include=entities)
        header = set(AnalyticalDataset.model_fields) - {"dataset", "schema_version"}
        assert read.model_dump(include=header) == message.model_dump(include=header)


def test_a_day_without_a_row_is_null_on_the_wire_and_nan_in_the_view() -> None:
    first = date(2026, 1, 1)
    rows = [UsageDay(usage_date=first, query_count=5), UsageDay(usage_date=first + timedelta(2))]
    columns = UsageColumns(**UsageSeries.from_rows(rows).to_columns())
    assert columns.start == first and columns.days == 3
    assert columns.query_count == [5.0, None, 0.0]
    view = UsageSeries.from_columns(columns.model_dump(mode="json"))
    assert math.isnan(view.metric("query_count")[1])
    assert view.date_at(2) == first + timedelta(2)
    assert view.last_day() == first + timedelta(2)
    assert view.between("query_count", first, first + timedelta(1)) == [5.0]


def test_two_rows_for_one_day_are_refused() -> None:
    day = date(2026, 1, 1)
    with pytest.raises(DatasetFormatError, match="two rows for 2026-01-01"):
        UsageSeries.from_rows([UsageDay(usage_date=day), UsageDay(usage_date=day)])


@given(
    days=st.lists(st.integers(min_value=0, max_value=60), unique=True, max_size=30),
    values=st.lists(st.floats(min_value=0, max_value=1e12), min_size=7, max_size=7),
)
def test_round_trip_of_any_gappy_series(days: list[int], values: list[float]) -> None:
    first = date(2025, 12, 20)
    metrics = dict(zip(USAGE_METRICS, values, strict=True))
    rows = [UsageDay(usage_date=first + timedelta(d), **metrics) for d in sorted(days)]
    wire = UsageColumns(**UsageSeries.from_rows(rows).to_columns()).model_dump(mode="json")
    view = UsageSeries.from_columns(orjson.loads(orjson.dumps(wire)))
    assert view.to_rows() == rows
    assert view.days == (max(days) - min(days) + 1 if days else 0)


# --- the producer validates once ---------------------------------------------------------


def usage(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"start": date(2026, 1, 1), "days": 2}
    base.update({m: [1.0, None] for m in USAGE_METRICS})
    base.update(changes)
    return base


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"cost_usd": [1.0]}, "cost_usd has 1 values for 2 days"),
        ({"days": 3}, "query_count has 2 values for 3 days"),
        ({"fbu": [1.0, "2.5"]}, "fbu.1"),
        ({"fbu": [1.0, True]}, "fbu.1"),
        ({"fbu": [1.0, float("nan")]}, "fbu.1"),
        ({"start": None}, "start is missing for 2 days"),
        ({"days": -1}, "days"),
    ],
)
def test_producer_refuses_bad_columns(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason.replace(".", r"\.")):
        UsageColumns(**usage(**changes))


def test_producer_refuses_usage_after_as_of() -> None:
    with pytest.raises(ValidationError, match="usage runs to 2026-01-02, after as_of 2026-01-01"):
        ColumnarDataset(
            account=Account(sf_account_id="a", sf_account_name="A"),
            as_of=date(2026, 1, 1),
            usage=UsageColumns(**usage()),
            billing={"event_date": [], "amount_usd": []},
        )


# --- the consumer reads without re-validating, and refuses what it cannot read -----------


@pytest.fixture(scope="module")
def wire(messages: list[AnalyticalDataset]) -> dict[str, Any]:
    return on_the_wire(next(m for m in messages if len(m.dataset.usage) >= 300))


def with_usage(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    dataset = {**payload["dataset"], "usage": {**payload["dataset"]["usage"], **changes}}
    return {**payload, "dataset": dataset}


def test_consumer_reads_the_published_form(wire: dict[str, Any]) -> None:
    assert wire["schema_version"] == DATASET_SCHEMA_VERSION
    read = read_dataset(wire)
    assert read.dataset.usage_series().days == wire["dataset"]["usage"]["days"]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda u: {"cost_usd": u["cost_usd"][:-1]}, r"dataset\.usage\.cost_usd has \d+ values"),
        (lambda u: {"fbu": ["lots", *u["fbu"][1:]]}, r"dataset\.usage\.fbu holds a value that"),
        (lambda u: {"fbu": [[1], *u["fbu"][1:]]}, r"dataset\.usage\.fbu holds a value that"),
        (lambda u: {"days": u["days"] + 1}, r"dataset\.usage\.query_count has \d+ values"),
        (lambda u: {"days": "365"}, r"dataset\.usage\.days is not a count of days"),
        (lambda u: {"start": "2026-13-01"}, r"dataset\.usage\.start is not a date"),
        (lambda u: {"start": "2026-10-31"}, r"dataset\.usage runs to 2027-.*after the dataset"),
        (lambda u: {"surprise": []}, r"dataset\.usage has unknown fields: surprise"),
    ],
)
def test_consumer_refuses_badly_shaped_series(
    wire: dict[str, Any], mutate: Any, reason: str
) -> None:
    with pytest.raises(DatasetFormatError, match=reason) as caught:
        read_dataset(with_usage(wire, **mutate(wire["dataset"]["usage"])))
    assert caught.value.code == "INVALID_DATASET"


@pytest.mark.parametrize("version", [3, 0, 2.5, "2", True, None])
def test_unknown_schema_version_is_refused_by_name(wire: dict[str, Any], version: Any) -> None:
    with pytest.raises(DatasetFormatError, match=r"schema_version .* is not supported") as caught:
        read_dataset({**wire, "schema_version": version})
    assert caught.value.code == "UNSUPPORTED_DATASET_VERSION"


def test_row_form_is_still_read(messages: list[AnalyticalDataset]) -> None:
    """Records published before the upgrade: no schema_version, one object per day."""
    message = messages[0]
    legacy = orjson.loads(encode(message))
    del legacy["schema_version"]
    read = read_dataset(legacy)
    assert isinstance(read.dataset, Dataset)
    assert read.dataset.usage_series().to_rows() == message.dataset.usage


def test_entities_are_still_validated(wire: dict[str, Any]) -> None:
    broken = {**wire, "dataset": {**wire["dataset"], "account": {"sf_account_id": 7}}}
    with pytest.raises(ValidationError, match="sf_account_name"):
        read_dataset(broken)


def test_view_arrays_are_float64(wire: dict[str, Any]) -> None:
    view = read_dataset(wire).dataset.usage_series()
    assert all(view.metric(m).dtype == np.float64 for m in USAGE_METRICS)


def test_the_documented_example_is_a_valid_message() -> None:
    """docs/dataset-wire-format.md's example reads, and means what the page says."""
    doc = (Path(__file__).parents[3] / "docs/dataset-wire-format.md").read_text()
    example = doc.split("```json\n", 1)[1].split("```", 1)[0]
    payload = orjson.loads(example)
    ColumnarAnalyticalDataset.model_validate(payload)  # what the producer would accept
    usage = read_dataset(payload).dataset.usage_series()
    assert usage.date_at(2) == date(2026, 10, 29) and not usage.present[2]
    assert usage.last_day() == date(2026, 10, 31)
    assert usage.metric("query_count")[0] == 41234.0
