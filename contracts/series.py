"""A dataset's series: their row models, and typed read views, one numpy array per metric.

What the analyses read, whichever form a dataset arrived in (docs/dataset-wire-format.md):
rows (`list[UsageDay]`, the form the data agent builds and the old wire form) are converted
at read; columns (the wire form, one array per metric, day `i` = `start + i`, null = no row
that day) are wrapped after O(1) shape checks and one numpy conversion per metric, with no
per-value pydantic pass: the producer validated them once, and the signature covers the
exact bytes it validated.
"""

from __future__ import annotations

import math
import operator
import reprlib
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import TypeAdapter, ValidationError

from contracts.common import Contract


class UsageDay(Contract):
    """One day of an account's usage (a `consumption_daily_f` row): the row form."""

    usage_date: date
    query_count: float = 0
    engine_hours: float = 0
    fbu: float = 0
    data_scanned_bytes: float = 0
    data_ingested_bytes: float = 0
    cost_usd: float = 0
    active_users: float = 0


class BillingEvent(Contract):
    event_date: date
    amount_usd: float


#: The daily usage metrics, in the column order of `UsageDay` (and of the wire form).
USAGE_METRICS: tuple[str, ...] = tuple(n for n in UsageDay.model_fields if n != "usage_date")

_METRIC_VALUES = operator.attrgetter(*USAGE_METRICS)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]
DayArray = NDArray[np.datetime64]


class DatasetFormatError(ValueError):
    """A dataset that cannot be read. `code` is the DLQ code; the message names the field."""

    def __init__(self, message: str, code: str = "INVALID_DATASET") -> None:
        super().__init__(message)
        self.code = code


def _floats(values: object, where: str, length: int) -> FloatArray:
    """A wire array as float64 (null -> NaN), refused unless a list of `length` numbers/nulls."""
    if not isinstance(values, list):
        raise DatasetFormatError(f"{where} is not an array")
    if len(values) != length:
        raise DatasetFormatError(f"{where} has {len(values)} values, expected {length}")
    not_numeric = f"{where} holds a value that is neither a number nor null"
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetFormatError(not_numeric) from exc
    if array.ndim != 1 or np.isinf(array).any():
        raise DatasetFormatError(not_numeric)
    return array


_DATE: TypeAdapter[date] = TypeAdapter(date)  # the contract's own date parsing
_DATES: TypeAdapter[list[date]] = TypeAdapter(list[date])


def _day(value: object, where: str) -> date:
    try:
        return _DATE.validate_python(value)
    except ValidationError as exc:
        raise DatasetFormatError(f"{where} is not a date: {reprlib.repr(value)}") from exc


def _wire(array: FloatArray) -> list[float | None]:
    values: list[float | None] = array.tolist()
    for index in np.flatnonzero(np.isnan(array)).tolist():
        values[index] = None
    return values


class UsageSeries:
    """Daily usage: `metric(name)[i]` is the value on `date_at(i)`, NaN on a day without a row."""

    __slots__ = ("_metrics", "_present", "days", "start")

    def __init__(self, start: date | None, days: int, metrics: Mapping[str, FloatArray]) -> None:
        self.start = start
        self.days = days
        self._metrics = dict(metrics)
        self._present: BoolArray | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def empty(cls) -> UsageSeries:
        return cls(None, 0, {m: np.zeros(0) for m in USAGE_METRICS})

    @classmethod
    def from_rows(cls, rows: Sequence[UsageDay]) -> UsageSeries:
        """One row per day (any order); days between the first and the last without a row
        become NaN. Two rows for one day cannot be one column and are refused."""
        if not rows:
            return cls.empty()
        days = np.fromiter((r.usage_date.toordinal() for r in rows), np.int64, len(rows))
        return cls.from_matrix(days, np.array(list(map(_METRIC_VALUES, rows)), dtype=np.float64))

    @classmethod
    def from_matrix(cls, days: IntArray, values: FloatArray) -> UsageSeries:
        """The day of ordinal `days[k]` (`date.toordinal()`) has the metrics `values[k]` (in
        USAGE_METRICS order), the days in any order; days between the first and the last
        without a row become NaN. Two rows for one day cannot be one column and are refused."""
        if not len(days):
            return cls.empty()
        first = int(days.min())
        index = days - first
        start = date.fromordinal(first)
        size = int(index.max()) + 1
        offsets, counts = np.unique(index, return_counts=True)
        if (counts > 1).any():
            twice = start + timedelta(days=int(offsets[counts > 1][0]))
            raise DatasetFormatError(f"usage has two rows for {twice.isoformat()}")
        metrics = {}
        for k, name in enumerate(USAGE_METRICS):
            column = np.full(size, np.nan)
            column[index] = values[:, k]
            metrics[name] = column
        return cls(start, size, metrics)

    @classmethod
    def from_columns(
        cls, columns: object, as_of: date | None = None, where: str = "usage"
    ) -> UsageSeries:
        """The wire form, checked for shape only: `days` a count, `start` a date when there
        are days, every metric an array of `days` numbers or nulls, no day after `as_of`."""
        if not isinstance(columns, Mapping):
            raise DatasetFormatError(f"{where} is not an object")
        days = columns.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            raise DatasetFormatError(f"{where}.days is not a count of days")
        raw_start = columns.get("start")
        start = None if raw_start is None and not days else _day(raw_start, f"{where}.start")
        unknown = set(columns) - {"start", "days", *USAGE_METRICS}
        if unknown:
            raise DatasetFormatError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
        metrics = {m: _floats(columns.get(m), f"{where}.{m}", days) for m in USAGE_METRICS}
        series = cls(start, days, metrics)
        last = series.end
        if as_of is not None and last is not None and last > as_of:
            raise DatasetFormatError(
                f"{where} runs to {last.isoformat()}, after the dataset's as_of {as_of.isoformat()}"
            )
        return series

    # ------------------------------------------------------------------ reading
    def metric(self, name: str) -> FloatArray:
        """One metric, one value per day from `start` (NaN: no row that day)."""
        return self._metrics[name]

    def date_at(self, index: int) -> date:
        if self.start is None or not 0 <= index < self.days:
            raise IndexError(f"day {index} is outside the series ({self.days} days)")
        return self.start + timedelta(days=index)

    @property
    def end(self) -> date | None:
        """The last day the arrays cover."""
        return None if self.start is None else self.start + timedelta(days=self.days - 1)

    @property
    def present(self) -> BoolArray:
        """Days with a row: any metric known that day."""
        if self._present is None:
            known = np.zeros(self.days, dtype=np.bool_)
            for values in self._metrics.values():
                known |= ~np.isnan(values)
            self._present = known
        return self._present

    def present_index(self) -> IntArray:
        return np.flatnonzero(self.present).astype(np.int64)

    def last_day(self) -> date | None:
        """The last day with a row."""
        index = self.present_index()
        return self.date_at(int(index[-1])) if len(index) else None

    def between(self, name: str, first: date, last: date) -> FloatArray:
        """`name` on the days with a row from `first` to `last` (both included), in day order."""
        if self.start is None:
            return np.zeros(0)
        lo = max((first - self.start).days, 0)
        hi = min((last - self.start).days + 1, self.days)
        if hi <= lo:
            return np.zeros(0)
        values = self._metrics[name][lo:hi]
        return values[self.present[lo:hi]]

    # ------------------------------------------------------------------ writing
    def to_columns(self) -> dict[str, Any]:
        """The wire form (`UsageColumns` fields)."""
        out: dict[str, Any] = {"start": self.start, "days": self.days}
        out.update({m: _wire(self._metrics[m]) for m in USAGE_METRICS})
        return out

    def to_rows(self) -> list[UsageDay]:
        """One `UsageDay` per day with a row (a metric unknown that day reads 0, as a NULL
        measurement does in the warehouse)."""
        rows = []
        for i in self.present_index().tolist():
            values = {m: float(self._metrics[m][i]) for m in USAGE_METRICS}
            clean = {m: 0.0 if math.isnan(v) else v for m, v in values.items()}
            rows.append(UsageDay(usage_date=self.date_at(i), **clean))
        return rows


class BillingSeries:
    """Billing events (about one a month): their days and amounts, one array each. Sparse,
    so their dates are listed, not implied by position."""

    __slots__ = ("amount_usd", "dates")

    def __init__(self, dates: DayArray, amount_usd: FloatArray) -> None:
        self.dates = dates
        self.amount_usd = amount_usd

    @classmethod
    def from_events(cls, events: Sequence[BillingEvent]) -> BillingSeries:
        return cls(
            np.array([e.event_date for e in events], dtype="datetime64[D]"),
            np.array([e.amount_usd for e in events], dtype=np.float64),
        )

    @classmethod
    def from_columns(
        cls, columns: object, as_of: date | None = None, where: str = "billing"
    ) -> BillingSeries:
        if not isinstance(columns, Mapping):
            raise DatasetFormatError(f"{where} is not an object")
        unknown = set(columns) - {"event_date", "amount_usd"}
        if unknown:
            raise DatasetFormatError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
        raw_dates = columns.get("event_date")
        try:
            days = _DATES.validate_python(raw_dates)
        except ValidationError as exc:
            raise DatasetFormatError(
                f"{where}.event_date holds a value that is not a date"
            ) from exc
        amounts = _floats(columns.get("amount_usd"), f"{where}.amount_usd", len(days))
        if np.isnan(amounts).any():
            raise DatasetFormatError(f"{where}.amount_usd holds a null")
        if as_of is not None and days and max(days) > as_of:
            raise DatasetFormatError(
                f"{where} has an event on {max(days).isoformat()}, "
                f"after the dataset's as_of {as_of.isoformat()}"
            )
        return cls(np.array(days, dtype="datetime64[D]"), amounts)

    def __len__(self) -> int:
        return len(self.amount_usd)

    def date_at(self, index: int) -> date:
        day: date = self.dates[index].astype(object)
        return day

    def to_columns(self) -> dict[str, Any]:
        return {
            "event_date": [self.date_at(i) for i in range(len(self))],
            "amount_usd": self.amount_usd.tolist(),
        }

    def to_events(self) -> list[BillingEvent]:
        amounts = self.amount_usd.tolist()
        return [
            BillingEvent(event_date=self.date_at(i), amount_usd=amounts[i])
            for i in range(len(self))
        ]
