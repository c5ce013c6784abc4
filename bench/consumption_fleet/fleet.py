"""The daily fleet scan: every account at once, same results as `ConsumptionAnalyzer`.

Inputs are column arrays (from a DuckDB/arrow query or anything else); the account index
of each row is found with one `np.searchsorted`, never a Python loop over accounts. Usage
rows may name their account by its position in `account_ids` (integer codes, what the
warehouse loader returns: 36 million account-id strings would cost more than the analysis).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.decision_agent.consumption.inputs import (
    CLASS_CODES,
    USAGE_METRICS,
    Agreements,
    Calls,
    FleetInputs,
    IntArray,
    Tickets,
    to_day,
    usage_matrix,
)
from services.decision_agent.consumption.pipeline import FleetAssessment, assess
from services.decision_agent.consumption.rule_models import ConsumptionRules

# A column: a numpy array (e.g. `pyarrow.Table.column(...).to_numpy()`) or any sequence.
Column = Sequence[Any] | NDArray[Any]


def _index(
    account_ids: NDArray[np.str_], keys: NDArray[np.str_]
) -> tuple[IntArray, NDArray[np.bool_]]:
    """Position of each key in the sorted `account_ids` and whether it is a known account."""
    position = np.clip(np.searchsorted(account_ids, keys), 0, max(len(account_ids) - 1, 0))
    known = account_ids[position] == keys if len(account_ids) else np.zeros(len(keys), bool)
    return position.astype(np.int64), known


def _usage_index(
    accounts: Column, ids: NDArray[np.str_], order: IntArray
) -> tuple[NDArray[np.integer[Any]], NDArray[np.bool_]]:
    """Sorted-account index of every usage row, from ids or positions in `account_ids`."""
    arr = np.asarray(accounts)
    if arr.size and np.issubdtype(arr.dtype, np.integer):
        known = (arr >= 0) & (arr < len(order))
        if np.all(order[1:] > order[:-1]) and known.all():
            return arr, known  # account_ids already sorted: positions are the index
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order))
        return rank[np.where(known, arr, 0)], known
    return _index(ids, np.asarray(arr, dtype=str))


def _day_numbers(values: Column) -> NDArray[np.integer[Any]]:
    """Days since the epoch from datetime64 / date / integer day columns (integers are
    passed through at their width: the usage column is long, converted chunk by chunk)."""
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.issubdtype(arr.dtype, np.integer):
        return arr
    if not np.issubdtype(arr.dtype, np.datetime64):
        arr = arr.astype("datetime64[D]")
    return arr.astype("datetime64[D]").astype(np.int64)


def _days(values: Column) -> IntArray:
    return _day_numbers(values).astype(np.int64, copy=False)


@dataclass(frozen=True)
class FleetColumns:
    """Raw columns, one array per warehouse column (e.g. `pyarrow.Table.column(...).to_numpy()`)."""

    account_ids: Column
    customer_class: Column  # commit | plg | prospect per account
    created_at: Column  # date/datetime64 per account (NaT = unknown)
    has_opportunity: Column
    usage_account: Column  # ids, or positions in `account_ids`
    usage_date: Column  # date/datetime64, or int days since 1970-01-01
    usage_values: NDArray[np.floating[Any]]  # rows x USAGE_METRICS
    # Per account, its first usage day when the usage rows given start later (e.g. only the
    # analysis window was read); NaT/None = no usage. Default: taken from the rows.
    first_usage: Column = ()
    ticket_account: Column = ()
    ticket_id: Column = ()
    ticket_created: Column = ()
    ticket_priority: Column = ()
    agreement_account: Column = ()
    agreement_id: Column = ()
    agreement_start: Column = ()
    agreement_end: Column = ()
    agreement_amount: Column = ()
    agreement_term_months: Column = ()
    agreement_active: Column = ()
    call_account: Column = ()
    call_id: Column = ()
    call_start: Column = ()


def fleet_inputs(columns: FleetColumns, as_of: date, rules: ConsumptionRules) -> FleetInputs:
    order = np.argsort(np.asarray(columns.account_ids, dtype=str), kind="stable")
    ids = np.asarray(columns.account_ids, dtype=str)[order]
    n = len(ids)
    as_of_day = to_day(as_of)

    u_acc, u_ok = _usage_index(columns.usage_account, ids, order)
    u_day = _day_numbers(columns.usage_date)
    values = np.asarray(columns.usage_values).reshape(len(u_day), len(USAGE_METRICS))
    if not u_ok.all():
        u_acc, u_day, values = u_acc[u_ok], u_day[u_ok], values[u_ok]
    matrix = usage_matrix(u_acc, u_day, values, n, as_of_day, rules.history_days)

    created = np.asarray(columns.created_at, dtype="datetime64[D]")[order]
    first_use, first_col = matrix.first_use_day, matrix.first_col
    if len(columns.first_usage):
        given = np.asarray(columns.first_usage, dtype="datetime64[D]")[order]
        known = ~np.isnat(given)
        first_use = np.where(known, np.minimum(given.astype(np.int64), as_of_day), as_of_day)
        first_col = np.where(known & (first_use < as_of_day - rules.history_days + 1), 0, first_col)
    since = np.where(np.isnat(created), first_use, created.astype(np.int64))

    t_acc, t_ok = _index(ids, np.asarray(columns.ticket_account, dtype=str))
    high = np.isin(
        np.char.upper(np.asarray(columns.ticket_priority, dtype=str)), rules.signals.high_priorities
    )
    a_acc, a_ok = _index(ids, np.asarray(columns.agreement_account, dtype=str))
    term = np.maximum(np.asarray(columns.agreement_term_months, dtype=np.float64), 1)
    c_acc, c_ok = _index(ids, np.asarray(columns.call_account, dtype=str))
    classes = np.array(
        [
            CLASS_CODES.get(c, CLASS_CODES["prospect"])
            for c in np.asarray(columns.customer_class, dtype=str)[order]
        ],
        dtype=np.int8,
    )
    return FleetInputs(
        account_ids=ids.tolist(),
        as_of_day=as_of_day,
        usage=matrix.usage,
        first_col=first_col,
        customer_class=classes,
        has_opportunity=np.asarray(columns.has_opportunity, dtype=np.bool_)[order],
        tenure_days=(as_of_day - since).astype(np.float64),
        tickets=Tickets(
            t_acc[t_ok],
            _days(columns.ticket_created)[t_ok] if t_ok.size else t_acc,
            high[t_ok] if t_ok.size else np.zeros(0, bool),
            np.asarray(columns.ticket_id, dtype=str)[t_ok].tolist(),
        ),
        agreements=Agreements(
            a_acc[a_ok],
            _days(columns.agreement_start)[a_ok] if a_ok.size else a_acc,
            _days(columns.agreement_end)[a_ok] if a_ok.size else a_acc,
            (np.asarray(columns.agreement_amount, dtype=np.float64) / term)[a_ok],
            np.asarray(columns.agreement_active, dtype=np.bool_)[a_ok],
            np.asarray(columns.agreement_id, dtype=str)[a_ok].tolist(),
        ),
        calls=Calls(
            c_acc[c_ok],
            _days(columns.call_start)[c_ok] if c_ok.size else c_acc,
            np.asarray(columns.call_id, dtype=str)[c_ok].tolist(),
        ),
    )


def analyze_fleet(columns: FleetColumns, as_of: date, rules: ConsumptionRules) -> FleetAssessment:
    """Trend classes, health/churn risk, escalation, flags and anomalies for every account."""
    return assess(fleet_inputs(columns, as_of, rules), rules)
