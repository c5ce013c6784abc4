"""Warehouse rows -> contract models (column names are the models' field names)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import TypeAdapter

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
    UsageDay,
)
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


_USAGE_FIELDS = tuple(UsageDay.model_fields)
_USAGE_DAYS = TypeAdapter(list[UsageDay])


def to_usage_days(rows: Iterable[Row]) -> list[UsageDay]:
    """A year of daily rows per account: validated as one list by pydantic-core (about 2.5x
    faster than a model per row). A day with no measurement (NULL) counts as zero."""
    return _USAGE_DAYS.validate_python(
        [{k: (0 if row[k] is None else row[k]) for k in _USAGE_FIELDS} for row in rows]
    )


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
