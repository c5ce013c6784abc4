"""Warehouse rows -> contract models (column names are the models' field names)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

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
from services.data_agent.warehouse.base import Row

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


_USAGE_VALUES = operator.itemgetter(*USAGE_METRICS)


def to_usage_series(rows: Sequence[Row]) -> UsageSeries:
    """An account's daily rows (a year of them) as columns, straight from the warehouse's
    typed values: one numpy conversion, no model per row. A day with no measurement (NULL)
    counts as zero. A value that is not a number, a day that is not a date or an infinite
    value is refused (`DatasetFormatError`, naming the account and the column)."""
    if not rows:
        return UsageSeries.empty()
    account = rows[0].get("sf_account_id")
    try:
        days = np.fromiter((row["usage_date"].toordinal() for row in rows), np.int64, len(rows))
    except AttributeError as exc:
        raise DatasetFormatError(
            f"usage of account {account!r}: a usage_date is not a date"
        ) from exc
    try:
        values = np.array(list(map(_USAGE_VALUES, rows)), dtype=np.float64)  # NULL -> NaN
    except (TypeError, ValueError) as exc:
        raise DatasetFormatError(f"usage of account {account!r}: {exc}") from exc
    infinite = np.isinf(values).any(axis=0)
    if infinite.any():
        metric = USAGE_METRICS[int(np.flatnonzero(infinite)[0])]
        raise DatasetFormatError(f"usage of account {account!r}: {metric} is infinite")
    values[np.isnan(values)] = 0.0
    return UsageSeries.from_matrix(days, values)


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
