"""The embedded export target: a DuckDB file of its own (`insights.duckdb` in the state dir,
`exporter.export_path`).

Why not the warehouse file itself: the data agent holds the warehouse open read-only, and a
DuckDB file takes either one writing process or readers, never both. A separate file lets
the exporter write while the data agent reads; `revops warehouse query` (and any DuckDB
client) ATTACHes it read-only next to the warehouse, so one query joins
`revops_ai_insights` with the CRM tables. The exporter opens the file only while it writes a
run's batches, so a reader waits at most that long (and vice versa: a run that finds the
file held by a reader leaves the rows in the outbox for the next run).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from services.execution_agent.warehouse_export.columns import (
    AUDIT,
    INSIGHTS,
    TABLES,
    Kind,
    Row,
    Table,
)
from services.execution_agent.warehouse_export.outbox import ExportBatch
from services.execution_agent.warehouse_export.sink import (
    ExportTargetBusyError,
    ExportTargetError,
)

TYPES = {
    Kind.TEXT: "VARCHAR",
    Kind.DOUBLE: "DOUBLE",
    Kind.INTEGER: "INTEGER",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.JSON: "JSON",
}


def is_lock_conflict(exc: duckdb.Error) -> bool:
    """DuckDB's "Could not set lock on file": another process holds the file."""
    return "lock" in str(exc).lower()


def create_table_sql(table: Table) -> str:
    columns = ", ".join(
        f"{c.name} {TYPES[c.kind]}{' NOT NULL' if c.required else ''}" for c in table.columns
    )
    return f"CREATE TABLE IF NOT EXISTS {table.name} ({columns}, PRIMARY KEY ({table.key}))"


# The current state: a newer version replaces the row, the same or an older one changes
# nothing (a re-export, or a batch behind another exporter's).
ON_CONFLICT = {
    INSIGHTS.name: f" ON CONFLICT ({INSIGHTS.key}) DO UPDATE SET "
    + ", ".join(f"{n} = excluded.{n}" for n in INSIGHTS.names if n != INSIGHTS.key)
    + f" WHERE excluded.version > {INSIGHTS.name}.version",
    AUDIT.name: f" ON CONFLICT ({AUDIT.key}) DO NOTHING",
}
#: A batch reaches DuckDB as an Arrow table it scans in place. DuckDB plans every statement
#: it runs: `executemany` (one statement per row) took ~3.5 s of CPU for 500 insights and 500
#: events, INSERTs of 200 rows' parameters ~55-70 ms per table and batch, an Arrow table
#: ~1 ms to build and one statement per table to merge.
ARROW_TYPES = {
    Kind.TEXT: pa.string(),
    Kind.DOUBLE: pa.float64(),
    Kind.INTEGER: pa.int64(),
    Kind.TIMESTAMP: pa.timestamp("us"),
    Kind.JSON: pa.string(),  # JSON text, cast by the column's type
}
INCOMING = "incoming_rows"  # the name the batch's Arrow table is registered under


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([(c.name, ARROW_TYPES[c.kind]) for c in table.columns])


def one_per_key(table: Table, rows: list[Row]) -> list[Row]:
    """One row per key, the one the row-by-row upsert kept: the highest version (the first
    of equal ones) for versioned rows, the first otherwise. A merge of one statement must not
    meet a key twice."""
    kept: dict[Any, Row] = {}
    versioned = "version" in table.names
    for row in rows:
        key = row[table.key]
        held = kept.get(key)
        if held is None or (versioned and row["version"] > held["version"]):
            kept[key] = row
    return list(kept.values())


class DuckDBInsightSink:
    target = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(path))
        except duckdb.Error as exc:
            if is_lock_conflict(exc):
                raise ExportTargetBusyError(
                    f"{path} is held by another process (a reader or another exporter); "
                    "the export resumes at the next run"
                ) from exc
            raise ExportTargetError(f"cannot open {path}: {exc}") from exc
        try:
            for table in TABLES:
                self._con.execute(create_table_sql(table))
        except duckdb.Error as exc:
            self._con.close()
            raise ExportTargetError(f"cannot create the export tables in {path}: {exc}") from exc

    def write(self, batch: ExportBatch) -> None:
        con = self._con
        con.begin()
        try:
            self._merge(INSIGHTS, batch.insights)
            self._merge(AUDIT, batch.events)
            con.commit()
        except duckdb.Error as exc:
            con.rollback()
            raise ExportTargetError(f"writing {self.path} failed: {exc}") from exc

    def _merge(self, table: Table, rows: list[Row]) -> None:
        """`rows` into `table` as the row-by-row upsert wrote them: one INSERT ... SELECT
        from the batch's Arrow table with the table's ON CONFLICT rule."""
        if not rows:
            return
        columns = ", ".join(table.names)
        incoming = pa.Table.from_pylist(one_per_key(table, rows), schema=arrow_schema(table))
        self._con.register(INCOMING, incoming)
        try:
            self._con.execute(
                f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {INCOMING}"
                + ON_CONFLICT[table.name]
            )
        finally:
            self._con.unregister(INCOMING)

    def close(self) -> None:
        self._con.close()


ATTACHED_AS = "insights"
ATTACH_WAIT_S = 10.0  # an export run holds the file for a few batches at most


def attach_insights(
    con: duckdb.DuckDBPyConnection, path: Path, wait_s: float = ATTACH_WAIT_S
) -> None:
    """ATTACH the export file read-only to a warehouse connection as `insights`, and put it
    on the search path after the warehouse's own tables, so `revops_ai_insights` and
    `revops_ai_insight_audit` need no prefix (as in Firebolt, where they share the database).
    Waits for a running export to finish with the file."""
    warehouse = con.execute("SELECT current_database()").fetchone()
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con.execute(f"ATTACH IF NOT EXISTS '{_quoted(path)}' AS {ATTACHED_AS} (READ_ONLY)")
            break
        except duckdb.Error as exc:
            if not is_lock_conflict(exc) or time.monotonic() >= deadline:
                raise ExportTargetError(
                    f"cannot attach {path}: {str(exc).splitlines()[0]}"
                ) from exc
            time.sleep(0.2)
    assert warehouse is not None
    catalog = str(warehouse[0]).replace('"', '""').replace("'", "''")  # the file's stem
    con.execute(f"""SET search_path = '"{catalog}".main,{ATTACHED_AS}.main'""")


def detach_insights(con: duckdb.DuckDBPyConnection) -> None:
    """Let go of the export file (the exporter waits for it), before the warehouse closes."""
    con.execute(f"DETACH DATABASE IF EXISTS {ATTACHED_AS}")


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
