"""Warehouse rows -> contract models (column names are the models' field names)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from contracts.dataset import (
    Account,
    Agreement,
    BillingEvent,
    Call,
    Contact,
    CustomerClass,
    Employee,
    Opportunity,
    StageChange,
    SupportTicket,
)
from contracts.series import USAGE_METRICS, DatasetFormatError, UsageSeries
from services.data_agent.warehouse.base import Columns, Row

ACCOUNT_CLASSES = {"Commit Customer": CustomerClass.COMMIT, "PLG Customer": CustomerClass.PLG}


_FIELDS: dict[type[Any], frozenset[str]] = {}


def _fields(model: type[Any]) -> frozenset[str]:
    if model not in _FIELDS:
        _FIELDS[model] = frozenset(model.model_fields)
    return _FIELDS[model]


def _only(row: Row, model: type[Any]) -> dict[str, Any]:
    """The row's columns that are fields of `model` (drops warehouse-only columns)."""
    fields = _fields(model)
    return {k: v for k, v in row.items() if k in fields}


def customer_class(account_type: str | None) -> CustomerClass:
    """'Commit Customer' | 'PLG Customer' | anything else = prospect (docs/import.md)."""
    return ACCOUNT_CLASSES.get(account_type or "", CustomerClass.PROSPECT)


def to_account(row: Row) -> Account:
    return Account(**row, customer_class=customer_class(row.get("sf_account_type_custom")))


def to_opportunity(row: Row) -> Opportunity:
    return Opportunity(**row)


def to_stage_change(row: Row) -> StageChange:
    return StageChange(**_only(row, StageChange))


def to_contact(row: Row) -> Contact:
    return Contact(**row)


def to_employee(row: Row) -> Employee:
    return Employee(**row)


def to_call(row: Row) -> Call:
    data = _only(row, Call)
    emails = data.get("participant_emails")
    if isinstance(emails, str):
        data["participant_emails"] = orjson.loads(emails) if emails else []
    elif emails is None:
        data["participant_emails"] = []
    return Call(**data)


#: `date.toordinal()` of numpy's day 0 (1970-01-01).
_EPOCH_ORDINAL = 719_163


def to_usage_series(columns: Columns, account: str) -> UsageSeries:
    """An account's daily usage rows, read as columns (`Warehouse.fetch_columns`), as the
    series: no Python object per value on an engine that returns arrays. A day with no
    measurement (NULL) counts as zero. A value that is not a number, a day that is not a date
    or an infinite value is refused (`DatasetFormatError`, naming the account and the
    column)."""
    if not columns or not len(columns["usage_date"]):
        return UsageSeries.empty()
    days = _day_ordinals(columns["usage_date"], account)
    values = np.column_stack([_measurements(columns[m], account, m) for m in USAGE_METRICS])
    return UsageSeries.from_matrix(days, values)


def _day_ordinals(dates: NDArray[Any], account: str) -> NDArray[np.int64]:
    """`date.toordinal()` of every day (datetime64 from DuckDB, date objects otherwise)."""
    not_a_date = f"usage of account {account!r}: a usage_date is not a date"
    if np.ma.isMaskedArray(dates) and np.ma.getmaskarray(dates).any():
        raise DatasetFormatError(not_a_date)
    if np.issubdtype(dates.dtype, np.datetime64):
        days = np.asarray(dates).astype("datetime64[D]")
        if np.isnat(days).any():
            raise DatasetFormatError(not_a_date)
        return days.astype(np.int64) + _EPOCH_ORDINAL
    try:
        return np.fromiter((d.toordinal() for d in dates), np.int64, len(dates))
    except AttributeError as exc:
        raise DatasetFormatError(not_a_date) from exc


def _measurements(values: NDArray[Any], account: str, metric: str) -> NDArray[np.float64]:
    """One metric as float64, NULL as 0; refused unless every value is a finite number."""
    try:
        if np.ma.isMaskedArray(values):
            array = np.ma.getdata(values).astype(np.float64)
            array[np.ma.getmaskarray(values)] = np.nan
        elif values.dtype == object:
            array = np.array(values.tolist(), dtype=np.float64)  # None -> NaN
        else:
            array = values.astype(np.float64)  # a copy: NULLs become 0 below
    except (TypeError, ValueError) as exc:
        raise DatasetFormatError(f"usage of account {account!r}: {metric}: {exc}") from exc
    if np.isinf(array).any():
        raise DatasetFormatError(f"usage of account {account!r}: {metric} is infinite")
    array[np.isnan(array)] = 0.0
    return array


def to_ticket(row: Row) -> SupportTicket:
    return SupportTicket(**row)


def to_agreement(row: Row) -> Agreement:
    data = dict(row)
    for flag, default in (("auto_renew", False), ("is_active", True)):
        if data.get(flag) is None:
            data[flag] = default
    return Agreement(**data)


def to_billing_event(row: Row) -> BillingEvent:
    return BillingEvent(**_only(row, BillingEvent))
