"""Warehouse rows -> contract models (column names are the models' field names)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

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


def to_usage_series(columns: Columns, account: str) -> UsageSeries:
    """An account's daily usage rows, read as columns (`Warehouse.fetch_columns`), as the
    series: no model per day. A day with no measurement (NULL, or NaN) counts as zero. A
    value that is not a number, a day that is not a date or an infinite value is refused
    (`DatasetFormatError`, naming the account and the column)."""
    if not columns or not len(columns["usage_date"]):
        return UsageSeries.empty()
    days = _day_ordinals(columns["usage_date"], account)
    metrics = {m: _measurements(columns[m], account, m) for m in USAGE_METRICS}
    return UsageSeries.from_day_columns(days, metrics)


def _day_ordinals(dates: Sequence[Any], account: str) -> list[int]:
    """`date.toordinal()` of every day (a timestamp: its day); NULL or text is refused."""
    if not set(map(type, dates)) <= {date} and not all(isinstance(d, date) for d in dates):
        raise DatasetFormatError(f"usage of account {account!r}: a usage_date is not a date")
    return list(map(date.toordinal, dates))


def _measurements(values: Sequence[Any], account: str, metric: str) -> list[float]:
    """One metric as floats, NULL and NaN as 0; refused unless every value is a finite
    number."""
    # The usual column: floats only, all finite (their sum is: a NaN or an infinity would
    # make it NaN or infinite). Checked with two passes in C, no Python step per value.
    if set(map(type, values)) == {float} and math.isfinite(sum(values)):
        return list(values)
    try:
        floats = [0.0 if v is None else float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise DatasetFormatError(f"usage of account {account!r}: {metric}: {exc}") from exc
    if not all(math.isfinite(v) for v in floats):
        if any(math.isinf(v) for v in floats):
            raise DatasetFormatError(f"usage of account {account!r}: {metric} is infinite")
        floats = [0.0 if math.isnan(v) else v for v in floats]
    return floats


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
