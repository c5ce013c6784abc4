"""SQL text helpers for the loader: identifiers come from the schema or a mapping's headers
(quoted), values from a mapping (literals with quotes doubled); never from row data."""

from __future__ import annotations

from typing import Any

from services.data_agent.warehouse.schema import Table


def q(identifier: str) -> str:
    """A quoted identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: object) -> str:
    """A SQL text literal (None -> NULL)."""
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"


def key_sql(table: Table, alias: str = "") -> str:
    """The row's key as text ('a|b' for two key columns), as warehouse_row_source keeps it."""
    prefix = f"{alias}." if alias else ""
    parts = [f"CAST({prefix}{q(k)} AS VARCHAR)" for k in table.key]
    return parts[0] if len(parts) == 1 else f"concat_ws('|', {', '.join(parts)})"


def first_row(con: Any, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
    """The first row of a query, reading the result to its end (DuckDB refuses the next
    statement on a connection while a result is left half-read)."""
    rows = con.execute(sql, params or []).fetchall()
    return tuple(rows[0]) if rows else None
