"""The dataset's wire form, schema_version 2: series as columns (docs/dataset-wire-format.md).

Usage travels as one array per metric (day `i` is `start + i`, null on a day without a row)
instead of one object per day; billing as one array per field. The data agent builds this
form directly (`columnar_dataset`, from series it made out of the warehouse's typed rows and
checked as it made them); `to_columnar` converts a row-form dataset, validating the columns
(equal lengths, numbers or nulls, no day after `as_of`), and `as_rows` goes back. The
decision agent reads with `read_dataset`:
the entities are validated as before (a few dozen small objects), the series are only
shape-checked and wrapped in typed views (`contracts.series`), never re-validated value by
value; the envelope's signature covers the bytes the data agent validated.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import AllowInfNan, Field, PrivateAttr, Strict, StrictInt, model_validator

from contracts.common import Contract
from contracts.dataset import AnalyticalDataset, Dataset, DatasetBase, DatasetMessage
from contracts.series import USAGE_METRICS, BillingSeries, DatasetFormatError, UsageSeries

#: The form the data agent publishes.
DATASET_SCHEMA_VERSION: Final = 2
#: What a consumer reads: 1 (rows, before the upgrade) and 2 (columns).
SUPPORTED_DATASET_VERSIONS = (1, DATASET_SCHEMA_VERSION)

#: A finite JSON number; no string, boolean, NaN or infinity.
Number = Annotated[float, Strict(), AllowInfNan(False)]


class UsageColumns(Contract):
    """Daily usage, one array per metric: day `i` is `start + i`; null = no row that day."""

    start: date | None = Field(default=None, description="The first day (null when days is 0)")
    days: StrictInt = Field(ge=0, description="How many days every metric array covers")
    query_count: list[Number | None]
    engine_hours: list[Number | None]
    fbu: list[Number | None]
    data_scanned_bytes: list[Number | None]
    data_ingested_bytes: list[Number | None]
    cost_usd: list[Number | None]
    active_users: list[Number | None]

    @model_validator(mode="after")
    def _arrays_cover_the_days(self) -> UsageColumns:
        if self.days and self.start is None:
            raise ValueError(f"start is missing for {self.days} days")
        for metric in USAGE_METRICS:
            count = len(getattr(self, metric))
            if count != self.days:
                raise ValueError(f"{metric} has {count} values for {self.days} days")
        return self


class BillingColumns(Contract):
    """Billing events, one array per field (sparse: the dates are listed)."""

    event_date: list[date]
    amount_usd: list[Number]

    @model_validator(mode="after")
    def _equal_lengths(self) -> BillingColumns:
        if len(self.event_date) != len(self.amount_usd):
            raise ValueError(
                f"{len(self.event_date)} event dates for {len(self.amount_usd)} amounts"
            )
        return self


# UsageColumns spells the metrics out (so its JSON Schema names them); in step with UsageDay.
assert set(USAGE_METRICS) == set(UsageColumns.model_fields) - {"start", "days"}

_EMPTY_USAGE: dict[str, Any] = {"start": None, "days": 0, **{m: [] for m in USAGE_METRICS}}
_EMPTY_BILLING: dict[str, Any] = {"event_date": [], "amount_usd": []}


class ColumnarDataset(DatasetBase):
    usage: UsageColumns
    billing: BillingColumns
    # The views, built once (at read, or on first use) for the columns object they view.
    _usage_view: tuple[UsageColumns, UsageSeries] | None = PrivateAttr(default=None)
    _billing_view: tuple[BillingColumns, BillingSeries] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _no_day_after_as_of(self) -> ColumnarDataset:
        if self.as_of is None:
            return self
        start = self.usage.start
        if start is not None and self.usage.days:
            end = start + timedelta(days=self.usage.days - 1)
            if end > self.as_of:
                raise ValueError(f"usage runs to {end}, after as_of {self.as_of}")
        late = [d for d in self.billing.event_date if d > self.as_of]
        if late:
            raise ValueError(f"billing has an event on {late[0]}, after as_of {self.as_of}")
        return self

    def usage_series(self) -> UsageSeries:
        if self._usage_view is None or self._usage_view[0] is not self.usage:
            self._usage_view = (self.usage, UsageSeries.from_columns(dict(self.usage)))
        return self._usage_view[1]

    def billing_series(self) -> BillingSeries:
        if self._billing_view is None or self._billing_view[0] is not self.billing:
            self._billing_view = (self.billing, BillingSeries.from_columns(dict(self.billing)))
        return self._billing_view[1]


class ColumnarAnalyticalDataset(DatasetMessage):
    """Seed stage 2 output as it travels on `revops.datasets` (schema_version 2)."""

    # Required: a payload without it is of schema_version 1 (published before versions).
    schema_version: Literal[2]
    dataset: ColumnarDataset


def to_columnar(message: AnalyticalDataset) -> ColumnarAnalyticalDataset:
    """The row form the data agent builds, as the wire form; validated here, once."""
    rows = message.dataset
    entities = {name: getattr(rows, name) for name in DatasetBase.model_fields}
    dataset = ColumnarDataset(
        **entities,
        usage=UsageColumns(**rows.usage_series().to_columns()),
        billing=BillingColumns(**rows.billing_series().to_columns()),
    )
    header = {name: getattr(message, name) for name in DatasetMessage.model_fields}
    return ColumnarAnalyticalDataset(
        **{**header, "schema_version": DATASET_SCHEMA_VERSION, "dataset": dataset}
    )


def columnar_dataset(
    usage: UsageSeries, billing: BillingSeries, **entities: Any
) -> ColumnarDataset:
    """A dataset of series its producer built itself from typed values (the data agent, from
    the warehouse's rows: `UsageSeries.from_day_columns` refuses what cannot be a column,
    the caller infinite values): the usage columns are taken as they are, not validated value by
    value a second time, and the series stay attached as the dataset's views. The entities,
    the few billing events and the days against `as_of` are validated as usual."""
    usage_columns = UsageColumns.model_construct(**usage.to_columns())
    dataset = ColumnarDataset(
        **entities,
        usage=usage_columns,
        billing=BillingColumns(**billing.to_columns()),
    )
    dataset._usage_view = (dataset.usage, usage)
    dataset._billing_view = (dataset.billing, billing)
    return dataset


def as_rows(dataset: DatasetBase) -> Dataset:
    """The row form of a dataset (one object per usage day), for tools and tests that read
    usage day by day; `to_columnar` is the way back."""
    if isinstance(dataset, Dataset):
        return dataset
    entities = {name: getattr(dataset, name) for name in DatasetBase.model_fields}
    return Dataset(
        **entities,
        usage=dataset.usage_series().to_rows(),
        billing=dataset.billing_series().to_events(),
    )


def read_dataset(payload: Mapping[str, Any]) -> DatasetMessage:
    """A `revops.datasets` payload of either form. Raises `DatasetFormatError` (an unknown
    schema_version, badly shaped series) or pydantic's `ValidationError` (the rest)."""
    version = payload.get("schema_version", 1)
    known = isinstance(version, int | float) and not isinstance(version, bool)
    if known and version == 1:
        return AnalyticalDataset.model_validate(payload)
    if known and version == DATASET_SCHEMA_VERSION:
        return _read_columnar(payload)
    raise DatasetFormatError(
        f"dataset schema_version {reprlib.repr(version)} is not supported "
        f"(supported: {', '.join(map(str, SUPPORTED_DATASET_VERSIONS))})",
        code="UNSUPPORTED_DATASET_VERSION",
    )


def _read_columnar(payload: Mapping[str, Any]) -> ColumnarAnalyticalDataset:
    raw = payload.get("dataset")
    if not isinstance(raw, Mapping) or "usage" not in raw or "billing" not in raw:
        # pydantic names what is missing
        return ColumnarAnalyticalDataset.model_validate(payload)
    # Everything but the series is validated as usual; the series are swapped for empty
    # columns for that pass, then read as views (shape checks, one numpy array per metric).
    skeleton = {**payload, "dataset": {**raw, "usage": _EMPTY_USAGE, "billing": _EMPTY_BILLING}}
    message = ColumnarAnalyticalDataset.model_validate(skeleton)
    dataset = message.dataset
    usage = UsageSeries.from_columns(raw["usage"], dataset.as_of, "dataset.usage")
    billing = BillingSeries.from_columns(raw["billing"], dataset.as_of, "dataset.billing")
    dataset.usage = UsageColumns.model_construct(
        start=usage.start, days=usage.days, **{m: raw["usage"][m] for m in USAGE_METRICS}
    )
    dataset.billing = BillingColumns.model_construct(
        event_date=[billing.date_at(i) for i in range(len(billing))],
        amount_usd=raw["billing"]["amount_usd"],
    )
    dataset._usage_view = (dataset.usage, usage)
    dataset._billing_view = (dataset.billing, billing)
    return message
