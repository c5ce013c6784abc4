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

import duckdb

from services.execution_agent.warehouse_export.columns import AUDIT, INSIGHTS, TABLES, Kind, Table
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


def _insert_sql(table: Table) -> str:
    names = table.names
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


# The current state: a newer version replaces the row, the same or an older one changes
# nothing (a re-export, or a batch behind another exporter's).
UPSERT_INSIGHT = (
    _insert_sql(INSIGHTS)
    + f" ON CONFLICT ({INSIGHTS.key}) DO UPDATE SET "
    + ", ".join(f"{n} = excluded.{n}" for n in INSIGHTS.names if n != INSIGHTS.key)
    + f" WHERE excluded.version > {INSIGHTS.name}.version"
)
INSERT_EVENT = _insert_sql(AUDIT) + f" ON CONFLICT ({AUDIT.key}) DO NOTHING"


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
            if batch.insights:
                con.executemany(UPSERT_INSIGHT, [list(r.values()) for r in batch.insights])
            if batch.events:
                con.executemany(INSERT_EVENT, [list(r.values()) for r in batch.events])
            con.commit()
        except duckdb.Error as exc:
            con.rollback()
            raise ExportTargetError(f"writing {self.path} failed: {exc}") from exc

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
