"""Column-oriented inputs of the consumption analysis, for one account or the whole fleet.

Both paths (one `Dataset`, or warehouse query results for every account) are converted to
the same arrays, so one vectorized pipeline serves both and their results agree by
construction. Days are integers (days since 1970-01-01); usage is accounts x days x metrics
over the `history_days` ending at `as_of`.

Usage conventions: days before an account's first usage row are missing (NaN, the account
did not exist yet); days after it without a row are zero usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from numpy.typing import NDArray

from contracts.dataset import CustomerClass, Dataset
from services.decision_agent.anomaly.calendar import EPOCH_ORDINAL, day_number

USAGE_METRICS: tuple[str, ...] = (
    "query_count",
    "engine_hours",
    "fbu",
    "data_scanned_bytes",
    "data_ingested_bytes",
    "cost_usd",
    "active_users",
)
CLASS_CODES: dict[str, int] = {
    CustomerClass.COMMIT.value: 0,
    CustomerClass.PLG.value: 1,
    CustomerClass.PROSPECT.value: 2,
}
CLASS_NAMES: tuple[str, ...] = tuple(CLASS_CODES)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def to_day(value: date | datetime) -> int:
    return day_number(value.date() if isinstance(value, datetime) else value)


def from_day(day: int) -> date:
    return date.fromordinal(int(day) + EPOCH_ORDINAL)


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
    usage: FloatArray  # accounts x days x USAGE_METRICS, last day = as_of
    customer_class: NDArray[np.int8]
    has_opportunity: BoolArray
    tenure_days: FloatArray  # days since the account was created (or first used)
    tickets: Tickets
    agreements: Agreements
    calls: Calls

    @property
    def first_day(self) -> int:
        return self.as_of_day - self.usage.shape[1] + 1

    def metric(self, name: str) -> FloatArray:
        return self.usage[:, :, USAGE_METRICS.index(name)]


def usage_matrix(
    account: IntArray, day: IntArray, values: FloatArray, n_accounts: int, as_of_day: int, days: int
) -> FloatArray:
    """accounts x days x metrics from usage rows (account index, day, metric values)."""
    first_day = as_of_day - days + 1
    column = day - first_day
    usage = np.full((n_accounts, days, values.shape[1]), np.nan)
    inside = (column >= 0) & (column < days)
    usage[account[inside], column[inside]] = values[inside]
    # Rows before the window mean the account already existed on its first day.
    known = day <= as_of_day
    first = np.full(n_accounts, days, dtype=np.int64)
    np.minimum.at(first, account[known], np.clip(column[known], 0, None))
    existed = np.arange(days)[None, :] >= first[:, None]
    usage = np.where(np.isnan(usage) & existed[:, :, None], 0.0, usage)
    return np.maximum(usage, 0.0)  # negative usage is a data error: clipped to zero


def inputs_from_dataset(
    dataset: Dataset, as_of: date, history_days: int, high: Sequence[str]
) -> FleetInputs:
    """One account's arrays; rows after `as_of` are ignored."""
    zero = np.zeros(0, dtype=np.int64)
    rows = dataset.usage
    usage = usage_matrix(
        np.zeros(len(rows), dtype=np.int64),
        np.array([to_day(r.usage_date) for r in rows], dtype=np.int64),
        np.array([[getattr(r, m) for m in USAGE_METRICS] for r in rows], dtype=np.float64).reshape(
            len(rows), len(USAGE_METRICS)
        ),
        1,
        to_day(as_of),
        history_days,
    )
    account = dataset.account
    first_usage = min((to_day(r.usage_date) for r in rows), default=to_day(as_of))
    since = to_day(account.created_at_ts) if account.created_at_ts else first_usage
    tickets = dataset.tickets
    agreements = dataset.agreements
    calls = dataset.calls
    return FleetInputs(
        account_ids=[account.sf_account_id],
        as_of_day=to_day(as_of),
        usage=usage,
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
