"""The two warehouse tables of the export and how a store row becomes a warehouse row.

`revops_ai_insights` carries the operational table's columns (docs/domain.md §5) minus
`subject_key` (an index helper: account_id and opportunity_id are there), plus `exported_at`.
`revops_ai_insight_audit` is the audit trail with a stable `event_id` in place of the store's
`audit_id` (a counter of one database, not a name that survives a re-export), and
`changed_at` for the store's `at` (a reserved word in both warehouses).
Each sink maps the column kinds to its engine's types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from services.common.ids import derived_uuid


class Kind(StrEnum):
    TEXT = "text"
    DOUBLE = "double"
    INTEGER = "integer"
    TIMESTAMP = "timestamp"  # UTC, without a zone
    JSON = "json"  # JSON text


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = False
    source: str | None = None  # the store's column, when named differently

    @property
    def store_name(self) -> str:
        return self.source or self.name


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


T, D, INT, TS, J = Kind.TEXT, Kind.DOUBLE, Kind.INTEGER, Kind.TIMESTAMP, Kind.JSON

INSIGHTS = Table(
    "revops_ai_insights",
    "insight_id",
    (
        Column("insight_id", T, True),
        Column("request_id", T, True),
        Column("flow_id", T),
        Column("correlation_id", T),
        Column("source_agent", T, True),
        Column("category", T, True),
        Column("type", T, True),
        Column("title", T, True),
        Column("description", T, True),
        Column("status", T, True),
        Column("priority", T, True),
        Column("confidence", D, True),
        Column("impact_score", D, True),
        Column("urgency_score", D, True),
        Column("account_id", T, True),
        Column("opportunity_id", T),
        Column("payload", J, True),
        Column("evidence", J, True),
        Column("recommended_actions", J, True),
        Column("actions_taken", J, True),
        Column("created_at", TS, True),
        Column("updated_at", TS, True),
        Column("acknowledged_at", TS),
        Column("started_at", TS),
        Column("resolved_at", TS),
        Column("dismissed_at", TS),
        Column("expired_at", TS),
        Column("expires_at", TS),
        Column("version", INT, True),
        Column("exported_at", TS, True),
    ),
)

AUDIT = Table(
    "revops_ai_insight_audit",
    "event_id",
    (
        Column("event_id", T, True),
        Column("insight_id", T, True),
        Column("version", INT, True),
        Column("changed_at", TS, True, source="at"),  # `at` is a reserved word in SQL
        Column("actor", T, True),
        Column("action", T, True),
        Column("from_status", T),
        Column("to_status", T, True),
        Column("note", T),
        Column("changes", J, True),
        Column("exported_at", TS, True),
    ),
)

TABLES = (INSIGHTS, AUDIT)

Row = dict[str, Any]


def event_id(insight_id: str, version: int) -> str:
    """The name of one change of one insight: every change bumps the version, so the pair
    names it, the same on every export."""
    return derived_uuid("insight", insight_id, f"version-{version}")


def warehouse_time(value: str | None) -> datetime | None:
    """The store's ISO-8601 UTC text as a UTC timestamp without zone (what both warehouses
    hold)."""
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)


def warehouse_row(table: Table, store_row: Any, exported_at: datetime, **extra: Any) -> Row:
    """The warehouse row of `table` from a store row (by column name), with `extra` values."""
    values: Row = {}
    for column in table.columns:
        if column.name in extra:
            values[column.name] = extra[column.name]
        elif column.name == "exported_at":
            values[column.name] = exported_at
        elif column.kind is Kind.TIMESTAMP:
            values[column.name] = warehouse_time(store_row[column.store_name])
        else:
            values[column.name] = store_row[column.store_name]
    return values
