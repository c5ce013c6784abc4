"""The production export target: the Firebolt database the data agent reads
(`REVOPS_FIREBOLT_*`, services/common/firebolt.py), with server-side parameters, so no value
is ever formatted into SQL text.

Firebolt has no `INSERT ... ON CONFLICT`, so a batch is written idempotently in steps that
each leave a correct table behind:

1. read the versions the warehouse holds for the batch's insights and the event ids it
   already has;
2. insert the insights whose version is newer, and the events it does not have;
3. delete the rows those insights had before (version below the newest).

A crash after 2 leaves an insight with two rows (its old and new version) until the
re-export of the batch, which inserts nothing and finishes step 3. Readers never see an
insight disappear. The lease (outbox.py) keeps a second exporter from interleaving.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from firebolt.utils.exception import FireboltError

from services.common.firebolt import FireboltSettings, FireboltSettingsError
from services.execution_agent.warehouse_export.columns import (
    AUDIT,
    INSIGHTS,
    TABLES,
    Kind,
    Row,
    Table,
)
from services.execution_agent.warehouse_export.outbox import ExportBatch
from services.execution_agent.warehouse_export.sink import ExportTargetError

ROWS_PER_STATEMENT = 50  # ~1,500 parameters per INSERT of insights

TYPES = {
    Kind.TEXT: "TEXT",
    Kind.DOUBLE: "DOUBLE PRECISION",
    Kind.INTEGER: "INTEGER",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.JSON: "TEXT",  # JSON text; Firebolt's JSON functions read it
}


def create_table_sql(table: Table) -> str:
    columns = ", ".join(
        f"{c.name} {TYPES[c.kind]} {'NOT NULL' if c.required else 'NULL'}" for c in table.columns
    )
    return f"CREATE TABLE IF NOT EXISTS {table.name} ({columns}) PRIMARY INDEX {table.key}"


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(first: int, count: int) -> str:
    return ", ".join(f"${i}" for i in range(first, first + count))


def _parameter(value: Any) -> Any:
    """Timestamps travel as text and are cast in the SQL (see `_insert`)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    return value


class FireboltInsightSink:
    target = "firebolt"

    def __init__(self, settings: FireboltSettings) -> None:
        try:
            self._connection = settings.connect()
        except FireboltError as exc:
            raise ExportTargetError(f"cannot connect to Firebolt: {exc}") from exc
        for table in TABLES:
            self._run(create_table_sql(table))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FireboltInsightSink:
        try:
            return cls(FireboltSettings.from_env(env))
        except FireboltSettingsError as exc:
            raise ExportTargetError(f"the insight export: {exc}") from None

    def _run(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, [_parameter(v) for v in parameters])
            return list(cursor.fetchall()) if cursor.description else []
        except FireboltError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportTargetError(f"Firebolt refused the export: {first}") from exc
        finally:
            cursor.close()

    def write(self, batch: ExportBatch) -> None:
        held = self._held_versions([r["insight_id"] for r in batch.insights])
        newer = [r for r in batch.insights if r["version"] > held.get(r["insight_id"], 0)]
        have = self._held_events([r["event_id"] for r in batch.events])
        self._insert(INSIGHTS, newer)
        self._insert(AUDIT, [r for r in batch.events if r["event_id"] not in have])
        newest = {
            r["insight_id"]: max(r["version"], held.get(r["insight_id"], 0)) for r in batch.insights
        }
        self._delete_superseded(newest)

    def _held_versions(self, insight_ids: Sequence[str]) -> dict[str, int]:
        held: dict[str, int] = {}
        for part in _chunks(insight_ids, ROWS_PER_STATEMENT * 10):
            for insight_id, version in self._run(
                f"SELECT insight_id, max(version) FROM {INSIGHTS.name} "
                f"WHERE insight_id IN ({_marks(1, len(part))}) GROUP BY insight_id",
                part,
            ):
                held[insight_id] = int(version)
        return held

    def _held_events(self, event_ids: Sequence[str]) -> set[str]:
        have: set[str] = set()
        for part in _chunks(event_ids, ROWS_PER_STATEMENT * 10):
            rows = self._run(
                f"SELECT event_id FROM {AUDIT.name} WHERE event_id IN ({_marks(1, len(part))})",
                part,
            )
            have.update(str(r[0]) for r in rows)
        return have

    def _insert(self, table: Table, rows: Sequence[Row]) -> None:
        width = len(table.columns)
        for part in _chunks(rows, ROWS_PER_STATEMENT):
            tuples = []
            for n in range(len(part)):
                cells = [
                    f"CAST(${n * width + i + 1} AS TIMESTAMP)"
                    if column.kind is Kind.TIMESTAMP
                    else f"${n * width + i + 1}"
                    for i, column in enumerate(table.columns)
                ]
                tuples.append(f"({', '.join(cells)})")
            self._run(
                f"INSERT INTO {table.name} ({', '.join(table.names)}) VALUES {', '.join(tuples)}",
                [value for row in part for value in row.values()],
            )

    def _delete_superseded(self, newest: Mapping[str, int]) -> None:
        items = sorted(newest.items())
        for part in _chunks(items, ROWS_PER_STATEMENT * 5):
            conditions = " OR ".join(
                f"(insight_id = ${2 * n + 1} AND version < ${2 * n + 2})" for n in range(len(part))
            )
            self._run(
                f"DELETE FROM {INSIGHTS.name} WHERE {conditions}",
                [value for pair in part for value in pair],
            )

    def close(self) -> None:
        self._connection.close()
