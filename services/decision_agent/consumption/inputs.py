"""Column-oriented inputs of the consumption analysis, for one account or the whole fleet.

Both paths (one `Dataset`, or warehouse query results for every account) are converted to
the same arrays, so one vectorized pipeline serves both and their results agree by
construction. Days are integers (days since 1970-01-01); usage is metrics x accounts x days
over the `history_days` ending at `as_of`, so every metric's days are one contiguous block
(what the prefix sums and the anomaly scorer read).

Usage is stored as float32: 24 bits of mantissa keep query and user counts exact up to 16.7
million a day and money/bytes to 7 significant digits, far finer than any threshold of the
analysis (ratios of 0.3 / 0.7 / 1.3 / 3), and it halves the fleet's memory. Window totals are
summed in float64.

Usage conventions: an account exists from its first usage row on (`first_col`); days after
it without a row are zero usage. Days before it hold 0 in `usage` (so sums need no NaN
handling) and are read as missing (NaN) through `FleetInputs.series`, e.g. by the anomaly
scorer, which must not take "did not exist yet" for "used nothing".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

from contracts.dataset import CustomerClass, DatasetBase
from contracts.series import USAGE_METRICS
from services.decision_agent.consumption.calendar import day_number

CLASS_CODES: dict[str, int] = {
    CustomerClass.COMMIT.value: 0,
    CustomerClass.PLG.value: 1,
    CustomerClass.PROSPECT.value: 2,
}
CLASS_NAMES: tuple[str, ...] = tuple(CLASS_CODES)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
UsageArray = NDArray[np.float32]
USAGE_DTYPE = np.float32
BoolArray = NDArray[np.bool_]


def to_day(value: date | datetime) -> int:
    return day_number(value.date() if isinstance(value, datetime) else value)


@dataclass(frozen=True)
class Tickets:
    account: IntArray
    day: IntArray  # created
    high: BoolArray  # priority among the high priorities (P1/P2)
    ids: Sequence[str]


@dataclass(frozen=True)
class Agreements:
    account: IntArray
    start_day: IntArray
    end_day: IntArray
    monthly_usd: FloatArray  # amount / term months
    active: BoolArray
    ids: Sequence[str]


@dataclass(frozen=True)
class Calls:
    account: IntArray
    day: IntArray
    ids: Sequence[str]


@dataclass(frozen=True)
class FleetInputs:
    account_ids: Sequence[str]
    as_of_day: int
    usage: UsageArray  # USAGE_METRICS x accounts x days, last day = as_of; 0 before first_col
    first_col: IntArray  # per account: first day column it existed (days = never)
    customer_class: NDArray[np.int8]
    has_opportunity: BoolArray
    tenure_days: FloatArray  # days since the account was created (or first used)
    tickets: Tickets
    agreements: Agreements
    calls: Calls

    @property
    def days(self) -> int:
        return int(self.usage.shape[2])

    @property
    def first_day(self) -> int:
        return self.as_of_day - self.days + 1

    def metric(self, name: str) -> UsageArray:
        """accounts x days of one metric (a contiguous view; 0 before an account existed)."""
        return self.usage[USAGE_METRICS.index(name)]

    def series(self, name: str, accounts: slice = slice(None)) -> UsageArray:
        """accounts x days of one metric, NaN before each account existed."""
        block = self.metric(name)[accounts]
        existed = np.arange(self.days)[None, :] >= self.first_col[accounts, None]
        return np.where(existed, block, np.float32(np.nan))


ROW_CHUNK = 2_000_000  # usage rows converted at a time (bounds the temporaries)


class UsageMatrix(NamedTuple):
    usage: UsageArray  # metrics x accounts x days
    first_col: IntArray  # per account: first column it existed (days = never)
    first_use_day: IntArray  # per account: first usage day up to as_of (as_of if none)


def usage_matrix(
    account: NDArray[np.integer[Any]],
    day: NDArray[np.integer[Any]],
    values: NDArray[np.floating[Any]],
    n_accounts: int,
    as_of_day: int,
    days: int,
) -> UsageMatrix:
    """Usage rows (account index, day number, metric values) as a dense matrix. Missing
    days are 0; so are missing (NaN) and negative values (a data error: usage cannot be
    negative). Rows go through in chunks, so no temporary is as long as the input."""
    metrics = values.shape[1]
    usage = np.zeros((metrics, n_accounts * days), dtype=USAGE_DTYPE)
    first = np.full(n_accounts, days, dtype=np.int64)
    first_use = np.full(n_accounts, as_of_day, dtype=np.int64)
    for lo in range(0, len(day), ROW_CHUNK):
        part = slice(lo, lo + ROW_CHUNK)
        acc = account[part].astype(np.int64)
        part_day = day[part].astype(np.int64)
        known = part_day <= as_of_day
        np.minimum.at(first_use, acc[known], part_day[known])
        column = part_day - (as_of_day - days + 1)
        # Rows before the window mean the account already existed on its first day.
        first[acc[column < 0]] = 0
        inside = (column >= 0) & (column < days)
        rows = slice(None) if inside.all() else np.flatnonzero(inside)
        cell = acc[rows] * days + column[rows]
        np.minimum.at(first, acc[rows], column[rows])
        chunk = values[part]
        picked = chunk[rows] if isinstance(rows, slice) else np.take(chunk, rows, axis=0)
        # fmax: negative and NaN -> 0
        if len(cell) and cell[-1] - cell[0] == len(cell) - 1 and np.all(np.diff(cell) == 1):
            # rows in (account, day) order without a gap: one block, written in place
            np.fmax(picked.T, 0, out=usage[:, cell[0] : cell[-1] + 1], casting="same_kind")
        else:
            columns = np.fmax(picked.T, 0).astype(USAGE_DTYPE)
            for m in range(metrics):
                usage[m, cell] = columns[m]
    return UsageMatrix(usage.reshape(metrics, n_accounts, days), first, first_use)


def inputs_from_dataset(
    dataset: DatasetBase, as_of: date, history_days: int, high: Sequence[str]
) -> FleetInputs:
    """One account's arrays; rows after `as_of` are ignored."""
    zero = np.zeros(0, dtype=np.int64)
    series = dataset.usage_series()  # the same view whether the dataset came as rows or columns
    present = series.present_index()
    first_day = to_day(series.start) if series.start is not None else 0
    as_of_day = to_day(as_of)
    matrix = usage_matrix(
        np.zeros(len(present), dtype=np.int64),
        first_day + present,
        np.stack([series.metric(m)[present] for m in USAGE_METRICS], axis=1),
        1,
        as_of_day,
        history_days,
    )
    account = dataset.account
    first_usage = int(matrix.first_use_day[0])
    since = to_day(account.created_at_ts) if account.created_at_ts else first_usage
    tickets = dataset.tickets
    agreements = dataset.agreements
    calls = dataset.calls
    return FleetInputs(
        account_ids=[account.sf_account_id],
        as_of_day=as_of_day,
        usage=matrix.usage,
        first_col=matrix.first_col,
        customer_class=np.array([CLASS_CODES[account.customer_class.value]], dtype=np.int8),
        has_opportunity=np.array([dataset.opportunity is not None]),
        tenure_days=np.array([float(to_day(as_of) - since)]),
        tickets=Tickets(
            np.zeros(len(tickets), dtype=np.int64),
            np.array([to_day(t.created_at_ts) for t in tickets], dtype=np.int64),
            np.array([t.priority.upper() in high for t in tickets], dtype=np.bool_),
            [t.ticket_id for t in tickets],
        ),
        agreements=Agreements(
            np.zeros(len(agreements), dtype=np.int64),
            np.array([to_day(a.start_date) for a in agreements], dtype=np.int64),
            np.array([to_day(a.end_date) for a in agreements], dtype=np.int64),
            np.array([a.amount / max(a.term_months, 1) for a in agreements], dtype=np.float64),
            np.array([a.is_active for a in agreements], dtype=np.bool_),
            [a.agreement_id for a in agreements],
        ),
        calls=Calls(
            np.zeros(len(calls), dtype=np.int64) if calls else zero,
            np.array([to_day(c.start_ts) for c in calls], dtype=np.int64),
            [c.call_id for c in calls],
        ),
    )


def concat_inputs(parts: Sequence[FleetInputs]) -> FleetInputs:
    """Several accounts' inputs (e.g. one dataset each) as one fleet: the same analysis day
    and history length, side tables re-indexed to the account's position in the result."""
    first = parts[0]
    if any(p.as_of_day != first.as_of_day or p.days != first.days for p in parts):
        raise ValueError("inputs of different analysis days or history lengths")
    offsets = np.cumsum([0] + [len(p.account_ids) for p in parts[:-1]])
    return FleetInputs(
        account_ids=[a for p in parts for a in p.account_ids],
        as_of_day=first.as_of_day,
        usage=np.concatenate([p.usage for p in parts], axis=1),
        first_col=np.concatenate([p.first_col for p in parts]),
        customer_class=np.concatenate([p.customer_class for p in parts]),
        has_opportunity=np.concatenate([p.has_opportunity for p in parts]),
        tenure_days=np.concatenate([p.tenure_days for p in parts]),
        tickets=_concat_side([p.tickets for p in parts], offsets),
        agreements=_concat_side([p.agreements for p in parts], offsets),
        calls=_concat_side([p.calls for p in parts], offsets),
    )


_Side = TypeVar("_Side", Tickets, Agreements, Calls)


def _concat_side(tables: Sequence[_Side], offsets: IntArray) -> _Side:
    """One side table of several inputs, rows in order; `account` (a position) shifted by
    where each input's accounts start in the joined inputs."""
    columns: dict[str, Any] = {}
    for column in fields(tables[0]):
        values = [getattr(table, column.name) for table in tables]
        if column.name == "account":
            columns["account"] = np.concatenate(
                [v + k for v, k in zip(values, offsets, strict=True)]
            )
        elif column.name == "ids":
            columns["ids"] = [i for ids in values for i in ids]
        else:
            columns[column.name] = np.concatenate(values)
    return type(tables[0])(**columns)
