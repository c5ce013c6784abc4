"""A dataset's series: their row models, and typed read views, one array per metric.

What the analyses read, whichever form a dataset arrived in (docs/dataset-wire-format.md):
rows (`list[UsageDay]`, the form the data agent builds and the old wire form) are converted
at read; columns (the wire form, one array per metric, day `i` = `start + i`, null = no row
that day) are wrapped after O(1) shape checks and one numpy conversion per metric, with no
per-value pydantic pass: the producer validated them once, and the signature covers the
exact bytes it validated.

numpy is imported only by what reads a series as arrays (`metric`, `present`,
`present_index`, `from_columns`): the analyses. Building a series and writing it to the wire
is plain Python, so the data agent, which only builds and writes them, never loads numpy
(~15 MB of its resident memory).
"""

from __future__ import annotations

import math
import operator
import reprlib
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from contracts.common import Contract

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]
    BoolArray = NDArray[np.bool_]
    IntArray = NDArray[np.int64]


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


class DatasetFormatError(ValueError):
    """A dataset that cannot be read. `code` is the DLQ code; the message names the field."""

    def __init__(self, message: str, code: str = "INVALID_DATASET") -> None:
        super().__init__(message)
        self.code = code


def _floats(values: object, where: str, length: int) -> FloatArray:
    """A wire array as float64 (null -> NaN), refused unless a list of `length` numbers/nulls."""
    import numpy as np  # a reader's path: see the module's docstring

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


def _has_nan(values: list[float]) -> bool:
    """Finite floats but for NaN (no row that day): any NaN makes the sum NaN (C speed)."""
    return math.isnan(sum(values))


def _wire(values: list[float]) -> list[float | None]:
    """NaN (no row that day) as null."""
    if not _has_nan(values):
        return list(values)
    return [None if math.isnan(v) else v for v in values]


class UsageSeries:
    """Daily usage: `values(name)[i]` (a list) or `metric(name)[i]` (a numpy array) is the
    value on `date_at(i)`, NaN on a day without a row.

    A series keeps each metric in the form it was made from (lists when built from the
    warehouse's rows, arrays when read from the wire) and makes the other on first use."""

    __slots__ = ("_arrays", "_flags", "_lists", "_present", "days", "start")

    def __init__(
        self, start: date | None, days: int, metrics: Mapping[str, list[float] | FloatArray]
    ) -> None:
        self.start = start
        self.days = days
        self._lists: dict[str, list[float]] = {}
        self._arrays: dict[str, FloatArray] = {}
        for name, values in metrics.items():
            if isinstance(values, list):
                self._lists[name] = values
            else:
                self._arrays[name] = values
        self._flags: list[bool] | None = None
        self._present: BoolArray | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def empty(cls) -> UsageSeries:
        return cls(None, 0, {m: [] for m in USAGE_METRICS})

    @classmethod
    def from_rows(cls, rows: Sequence[UsageDay]) -> UsageSeries:
        """One row per day (any order); days between the first and the last without a row
        become NaN. Two rows for one day cannot be one column and are refused."""
        if not rows:
            return cls.empty()
        values = list(zip(*map(_METRIC_VALUES, rows), strict=True))
        return cls.from_day_columns(
            [r.usage_date.toordinal() for r in rows],
            {m: list(column) for m, column in zip(USAGE_METRICS, values, strict=True)},
        )

    @classmethod
    def from_day_columns(
        cls, days: Sequence[int], metrics: Mapping[str, Sequence[float]]
    ) -> UsageSeries:
        """The day of ordinal `days[k]` (`date.toordinal()`) has `metrics[name][k]` for each
        of USAGE_METRICS, the days in any order; days between the first and the last without
        a row become NaN. Two rows for one day cannot be one column and are refused."""
        if not days:
            return cls.empty()
        first = min(days)
        start = date.fromordinal(first)
        if list(days) == list(range(first, first + len(days))):
            # in day order, without a gap: the columns as they are
            return cls(start, len(days), {m: list(metrics[m]) for m in USAGE_METRICS})
        slots = [day - first for day in days]
        size = max(slots) + 1
        if len(set(slots)) != len(slots):
            twice = min(slot for slot, count in Counter(slots).items() if count > 1)
            raise DatasetFormatError(
                f"usage has two rows for {(start + timedelta(days=twice)).isoformat()}"
            )
        columns: dict[str, list[float]] = {}
        for name in USAGE_METRICS:
            column = [math.nan] * size
            for slot, value in zip(slots, metrics[name], strict=True):
                column[slot] = value
            columns[name] = column
        return cls(start, size, columns)

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
    def values(self, name: str) -> list[float]:
        """One metric as a list, one value per day from `start` (NaN: no row that day)."""
        values = self._lists.get(name)
        if values is None:
            values = self._lists[name] = self._arrays[name].tolist()
        return values

    def metric(self, name: str) -> FloatArray:
        """One metric as a float64 array, one value per day from `start` (NaN: no row)."""
        array = self._arrays.get(name)
        if array is None:
            import numpy as np  # a reader's path: see the module's docstring

            array = self._arrays[name] = np.array(self._lists[name], dtype=np.float64)
        return array

    def date_at(self, index: int) -> date:
        if self.start is None or not 0 <= index < self.days:
            raise IndexError(f"day {index} is outside the series ({self.days} days)")
        return self.start + timedelta(days=index)

    @property
    def end(self) -> date | None:
        """The last day the arrays cover."""
        return None if self.start is None else self.start + timedelta(days=self.days - 1)

    def _read_as_arrays(self) -> bool:
        """Every metric is an array (read from the wire): answered with numpy, as the
        analyses read it, rather than a Python step per day."""
        return len(self._arrays) == len(USAGE_METRICS)

    def _present_flags(self) -> list[bool]:
        """Per day: has it a row (any metric known that day)?"""
        if self._flags is None:
            if self._read_as_arrays():
                self._flags = self.present.tolist()
                return self._flags
            columns = [self.values(m) for m in USAGE_METRICS]
            if not any(map(_has_nan, columns)):  # the usual series: a row every day
                self._flags = [True] * self.days
            else:
                self._flags = [
                    any(not math.isnan(v) for v in day) for day in zip(*columns, strict=True)
                ]
        return self._flags

    def present_days(self) -> list[int]:
        """The indexes of the days with a row, in day order."""
        if self._read_as_arrays():
            return self.present_index().tolist()
        flags = self._present_flags()
        if all(flags):
            return list(range(self.days))
        return [i for i, present in enumerate(flags) if present]

    @property
    def present(self) -> BoolArray:
        """Days with a row: any metric known that day."""
        import numpy as np  # a reader's path: see the module's docstring

        if self._present is None:
            if self._read_as_arrays():
                known = np.zeros(self.days, dtype=np.bool_)
                for name in USAGE_METRICS:
                    known |= ~np.isnan(self._arrays[name])
                self._present = known
            else:
                self._present = np.array(self._present_flags(), dtype=np.bool_)
        return self._present

    def present_index(self) -> IntArray:
        import numpy as np  # a reader's path: see the module's docstring

        return np.flatnonzero(self.present).astype(np.int64)

    def last_day(self) -> date | None:
        """The last day with a row."""
        if self._read_as_arrays():
            rows = self.present_index()
            return self.date_at(int(rows[-1])) if len(rows) else None
        flags = self._present_flags()
        for index in range(len(flags) - 1, -1, -1):
            if flags[index]:
                return self.date_at(index)
        return None

    def between(self, name: str, first: date, last: date) -> list[float]:
        """`name` on the days with a row from `first` to `last` (both included), in day order."""
        if self.start is None:
            return []
        lo = max((first - self.start).days, 0)
        hi = min((last - self.start).days + 1, self.days)
        if hi <= lo:
            return []
        if self._read_as_arrays():
            kept: list[float] = self.metric(name)[lo:hi][self.present[lo:hi]].tolist()
            return kept
        flags = self._present_flags()[lo:hi]
        return [v for v, present in zip(self.values(name)[lo:hi], flags, strict=True) if present]

    # ------------------------------------------------------------------ writing
    def to_columns(self) -> dict[str, Any]:
        """The wire form (`UsageColumns` fields)."""
        out: dict[str, Any] = {"start": self.start, "days": self.days}
        out.update({m: _wire(self.values(m)) for m in USAGE_METRICS})
        return out

    def to_rows(self) -> list[UsageDay]:
        """One `UsageDay` per day with a row (a metric unknown that day reads 0, as a NULL
        measurement does in the warehouse)."""
        columns = {m: self.values(m) for m in USAGE_METRICS}
        rows = []
        for i in self.present_days():
            values = {m: columns[m][i] for m in USAGE_METRICS}
            clean = {m: 0.0 if math.isnan(v) else v for m, v in values.items()}
            rows.append(UsageDay(usage_date=self.date_at(i), **clean))
        return rows


class BillingSeries:
    """Billing events (about one a month): their days and amounts, one list each. Sparse,
    so their dates are listed, not implied by position."""

    __slots__ = ("amount_usd", "dates")

    def __init__(self, dates: list[date], amount_usd: list[float]) -> None:
        self.dates = dates
        self.amount_usd = amount_usd

    @classmethod
    def from_events(cls, events: Sequence[BillingEvent]) -> BillingSeries:
        return cls([e.event_date for e in events], [e.amount_usd for e in events])

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
        amounts: list[float] = _floats(
            columns.get("amount_usd"), f"{where}.amount_usd", len(days)
        ).tolist()
        if any(math.isnan(a) for a in amounts):
            raise DatasetFormatError(f"{where}.amount_usd holds a null")
        if as_of is not None and days and max(days) > as_of:
            raise DatasetFormatError(
                f"{where} has an event on {max(days).isoformat()}, "
                f"after the dataset's as_of {as_of.isoformat()}"
            )
        return cls(days, amounts)

    def __len__(self) -> int:
        return len(self.amount_usd)

    def date_at(self, index: int) -> date:
        return self.dates[index]

    def to_columns(self) -> dict[str, Any]:
        return {"event_date": list(self.dates), "amount_usd": list(self.amount_usd)}

    def to_events(self) -> list[BillingEvent]:
        return [
            BillingEvent(event_date=day, amount_usd=amount)
            for day, amount in zip(self.dates, self.amount_usd, strict=True)
        ]
