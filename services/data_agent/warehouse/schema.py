"""The warehouse tables (docs/import.md lists them with every column), declared once.

Columns are derived from the wire models in `contracts.dataset` so a row read from the
warehouse maps 1:1 onto its pydantic model; the few columns a model does not carry (the
soft-delete flag of Gong calls, the account id of a usage day, the close date, amount and
probability in force at a stage change) are declared next to it. DDL for each engine, the
loader's checks and the generator's arrow schemas all come from this registry.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel

if typing.TYPE_CHECKING:
    import pyarrow as pa

from contracts.dataset import (
    Account,
    Agreement,
    Call,
    Contact,
    Employee,
    Opportunity,
    Product,
    StageChange,
    SupportTicket,
    UsageDay,
)


class ColumnType(StrEnum):
    TEXT = "text"
    BIGINT = "bigint"
    DOUBLE = "double"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"
    JSON_LIST = "json_list"  # a list of strings stored as JSON text (portable to both engines)


_ENGINE_TYPES: dict[str, dict[ColumnType, str]] = {
    "duckdb": {
        ColumnType.TEXT: "VARCHAR",
        ColumnType.BIGINT: "BIGINT",
        ColumnType.DOUBLE: "DOUBLE",
        ColumnType.DATE: "DATE",
        ColumnType.TIMESTAMP: "TIMESTAMP",
        ColumnType.BOOLEAN: "BOOLEAN",
        ColumnType.JSON_LIST: "VARCHAR",
    },
    # The data agent's row-store copy (replica.py). The first word of a date, timestamp or
    # boolean type names the converter that returns DuckDB's Python type; the second gives
    # SQLite the column's affinity.
    "sqlite": {
        ColumnType.TEXT: "TEXT",
        ColumnType.BIGINT: "INTEGER",
        ColumnType.DOUBLE: "REAL",
        ColumnType.DATE: "revops_date TEXT",
        ColumnType.TIMESTAMP: "revops_timestamp TEXT",
        ColumnType.BOOLEAN: "revops_bool INTEGER",
        ColumnType.JSON_LIST: "TEXT",
    },
    "firebolt": {
        ColumnType.TEXT: "TEXT",
        ColumnType.BIGINT: "BIGINT",
        ColumnType.DOUBLE: "DOUBLE PRECISION",
        ColumnType.DATE: "DATE",
        ColumnType.TIMESTAMP: "TIMESTAMP",
        ColumnType.BOOLEAN: "BOOLEAN",
        ColumnType.JSON_LIST: "TEXT",
    },
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    def ddl(self, engine: str = "duckdb") -> str:
        """CREATE TABLE for `engine`. Keys are checked by the loader, not declared as
        constraints: an index on a 36M-row fact table would make bulk appends slow."""
        types_ = _ENGINE_TYPES[engine]
        cols = ",\n  ".join(
            f"{c.name} {types_[c.type]}{'' if c.nullable else ' NOT NULL'}" for c in self.columns
        )
        ddl = f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"
        if engine == "firebolt":
            ddl += f" PRIMARY INDEX {', '.join(self.key)}"
        return ddl

    def arrow_schema(self) -> pa.Schema:
        # pyarrow is imported here, not at module level: only the generator and the loader
        # build Arrow tables, and the data agent service would carry ~40 MB for nothing.
        import pyarrow as pa

        arrow_types = {
            ColumnType.TEXT: pa.string(),
            ColumnType.BIGINT: pa.int64(),
            ColumnType.DOUBLE: pa.float64(),
            ColumnType.DATE: pa.date32(),
            ColumnType.TIMESTAMP: pa.timestamp("us"),
            ColumnType.BOOLEAN: pa.bool_(),
            ColumnType.JSON_LIST: pa.string(),
        }
        return pa.schema(
            [pa.field(c.name, arrow_types[c.type], nullable=c.nullable) for c in self.columns]
        )


def _column_type(annotation: object) -> tuple[ColumnType, bool]:
    """Map a model annotation (`str | None`, `list[str]`, ...) to a column type."""
    nullable = False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        nullable = type(None) in args
        (annotation,) = [a for a in args if a is not type(None)]
    if typing.get_origin(annotation) is list:
        return ColumnType.JSON_LIST, nullable
    mapping: dict[object, ColumnType] = {
        str: ColumnType.TEXT,
        int: ColumnType.BIGINT,
        float: ColumnType.DOUBLE,
        bool: ColumnType.BOOLEAN,
        datetime: ColumnType.TIMESTAMP,
        date: ColumnType.DATE,
    }
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return ColumnType.TEXT, nullable
    return mapping[annotation], nullable


def model_columns(model: type[BaseModel], exclude: tuple[str, ...] = ()) -> tuple[Column, ...]:
    cols = []
    for name, field in model.model_fields.items():
        if name in exclude:
            continue
        col_type, nullable = _column_type(field.annotation)
        # A field with a default may be absent from a source row: keep the column nullable.
        cols.append(Column(name, col_type, nullable or not field.is_required()))
    return tuple(cols)


def _table(
    name: str,
    model: type[BaseModel] | None,
    key: tuple[str, ...],
    *,
    before: tuple[Column, ...] = (),
    after: tuple[Column, ...] = (),
    exclude: tuple[str, ...] = (),
) -> Table:
    cols = before + (model_columns(model, exclude) if model else ()) + after
    return Table(name, cols, key)


_NOT_NULL_BOOL = ColumnType.BOOLEAN

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        # customer_class is derived from sf_account_type_custom, not stored.
        _table("salesforce_account_d", Account, ("sf_account_id",), exclude=("customer_class",)),
        _table("opportunity_d", Opportunity, ("opportunity_id",)),
        _table(
            "opportunity_stage_f",
            StageChange,
            ("opportunity_id", "started_at_ts"),
            # Values in force from this row on (Salesforce's opportunity history): a later
            # row with a later close date is a slipped close date. A row may record a change
            # of these without a change of stage (from_stage = to_stage). Empty everywhere =
            # the field has no history (a backtest then leaves it out).
            after=(
                Column("close_date", ColumnType.DATE),
                Column("amount", ColumnType.DOUBLE),
                Column("probability", ColumnType.DOUBLE),
            ),
        ),
        _table("product_d", Product, ("product_id",)),
        _table("contact_d", Contact, ("contact_id",)),
        _table("employee_d", Employee, ("sf_user_id",)),
        _table("agreement_f", Agreement, ("agreement_id",)),
        _table("support_ticket_f", SupportTicket, ("ticket_id",)),
        _table(
            "gong_call_f",
            Call,
            ("call_id",),
            after=(Column("is_deleted", _NOT_NULL_BOOL, nullable=False),),
        ),
        _table(
            "consumption_daily_f",
            UsageDay,
            ("sf_account_id", "usage_date"),
            before=(Column("sf_account_id", ColumnType.TEXT, nullable=False),),
        ),
        Table(
            "billing_event_f",
            (
                Column("billing_event_id", ColumnType.TEXT, nullable=False),
                Column("sf_account_id", ColumnType.TEXT, nullable=False),
                Column("event_date", ColumnType.DATE, nullable=False),
                Column("amount_usd", ColumnType.DOUBLE, nullable=False),
                Column("event_type", ColumnType.TEXT),
            ),
            ("billing_event_id",),
        ),
        Table(
            # Where each loaded row came from (file and line as the file shows it, header =
            # line 1), so `revops warehouse check` can point at the line to fix.
            "warehouse_row_source",
            (
                Column("table_name", ColumnType.TEXT, nullable=False),
                Column("row_key", ColumnType.TEXT, nullable=False),
                Column("source_file", ColumnType.TEXT, nullable=False),
                Column("source_line", ColumnType.BIGINT, nullable=False),
            ),
            ("table_name", "row_key"),
        ),
        Table(
            "warehouse_meta",
            (
                Column("key", ColumnType.TEXT, nullable=False),
                Column("value", ColumnType.TEXT),
            ),
            ("key",),
        ),
    )
}

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


def table(name: str) -> Table:
    """The table called `name`; the allow-list for every identifier put into SQL."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown warehouse table {name!r}; known: {', '.join(TABLES)}") from None


def create_all_ddl(engine: str = "duckdb") -> list[str]:
    return [t.ddl(engine) for t in TABLES.values()]
