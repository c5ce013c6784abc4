"""The daily fleet scan: every account at once, same results as `ConsumptionAnalyzer`.

Inputs are column arrays (from a DuckDB/arrow query or anything else); the account index
of each row is found with one `np.unique`, never a Python loop over accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from services.decision_agent.consumption.inputs import (
    CLASS_CODES,
    USAGE_METRICS,
    Agreements,
    Calls,
    FleetInputs,
    FloatArray,
    IntArray,
    Tickets,
    to_day,
    usage_matrix,
)
from services.decision_agent.consumption.pipeline import FleetAssessment, assess
from services.decision_agent.consumption.rule_models import ConsumptionRules


def _index(
    account_ids: NDArray[np.str_], keys: NDArray[np.str_]
) -> tuple[IntArray, NDArray[np.bool_]]:
    """Position of each key in the sorted `account_ids` and whether it is a known account."""
    position = np.clip(np.searchsorted(account_ids, keys), 0, max(len(account_ids) - 1, 0))
    known = account_ids[position] == keys if len(account_ids) else np.zeros(len(keys), bool)
    return position.astype(np.int64), known


def _days(values: Sequence[object] | NDArray[np.generic]) -> IntArray:
    """Days since the epoch from numpy datetime64 / date columns."""
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.datetime64):
        arr = arr.astype("datetime64[D]")
    return arr.astype("datetime64[D]").astype(np.int64)


@dataclass(frozen=True)
class FleetColumns:
    """Raw columns, one array per warehouse column (e.g. `pyarrow.Table.column(...).to_numpy()`)."""

    account_ids: Sequence[str]
    customer_class: Sequence[str]  # commit | plg | prospect per account
    created_at: Sequence[object]  # date/datetime64 per account (NaT = unknown)
    has_opportunity: Sequence[bool]
    usage_account: Sequence[str]
    usage_date: Sequence[object]
    usage_values: FloatArray  # rows x USAGE_METRICS
    ticket_account: Sequence[str] = ()
    ticket_id: Sequence[str] = ()
    ticket_created: Sequence[object] = ()
    ticket_priority: Sequence[str] = ()
    agreement_account: Sequence[str] = ()
    agreement_id: Sequence[str] = ()
    agreement_start: Sequence[object] = ()
    agreement_end: Sequence[object] = ()
    agreement_amount: Sequence[float] = ()
    agreement_term_months: Sequence[int] = ()
    agreement_active: Sequence[bool] = ()
    call_account: Sequence[str] = ()
    call_id: Sequence[str] = ()
    call_start: Sequence[object] = ()


def fleet_inputs(columns: FleetColumns, as_of: date, rules: ConsumptionRules) -> FleetInputs:
    order = np.argsort(np.asarray(columns.account_ids, dtype=str), kind="stable")
    ids = np.asarray(columns.account_ids, dtype=str)[order]
    n = len(ids)
    as_of_day = to_day(as_of)

    u_acc, u_ok = _index(ids, np.asarray(columns.usage_account, dtype=str))
    u_day = _days(columns.usage_date)
    values = np.asarray(columns.usage_values, dtype=np.float64).reshape(
        len(u_day), len(USAGE_METRICS)
    )
    usage = usage_matrix(u_acc[u_ok], u_day[u_ok], values[u_ok], n, as_of_day, rules.history_days)

    created = np.asarray(columns.created_at, dtype="datetime64[D]")[order]
    first_use = np.full(n, as_of_day, dtype=np.int64)
    np.minimum.at(first_use, u_acc[u_ok], u_day[u_ok])
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
        usage=usage,
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
