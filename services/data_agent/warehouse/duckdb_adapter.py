"""The embedded warehouse: a DuckDB file, opened read-only so many processes read at once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import duckdb

from services.data_agent.warehouse.base import (
    CREATE_HINT,
    DEFAULT_CHUNK_ROWS,
    Columns,
    Params,
    Row,
    WarehouseError,
)
from services.data_agent.warehouse.queries import Query
from services.data_agent.warehouse.sqltext import first_row


class DuckDBWarehouse:
    engine = "duckdb"
    # DuckDB has no parameter limit that matters here: a 500-record batch is one query.
    max_bound_ids = 1000

    def __init__(
        self,
        path: Path | str,
        *,
        read_only: bool = True,
        config: Mapping[str, str | int] | None = None,
    ) -> None:
        """`config`: DuckDB settings of the connection (e.g. `memory_limit`, `threads`);
        none: DuckDB's defaults (80 % of the machine's RAM, a thread per core)."""
        self.path = Path(path)
        self.memory_limit = str((config or {}).get("memory_limit", "80% of RAM"))
        if read_only and not self.path.exists():
            raise WarehouseError(f"warehouse file {self.path} does not exist; {CREATE_HINT}")
        try:
            self._con = duckdb.connect(
                str(self.path), read_only=read_only, config=dict(config or {})
            )
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open warehouse {self.path}: {exc}") from exc
        if read_only and self._is_empty():
            self._con.close()
            raise WarehouseError(
                f"warehouse {self.path} has no accounts or opportunities; {CREATE_HINT}"
            )

    def _is_empty(self) -> bool:
        """No CRM table, or both empty (e.g. a file left by a failed tool, not by us)."""
        tables = {
            str(r[0])
            for r in self._con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE table_name IN "
                "('salesforce_account_d', 'opportunity_d')"
            ).fetchall()
        }
        for table in sorted(tables):
            row = first_row(self._con, f"SELECT 1 FROM {table} LIMIT 1")
            if row is not None:
                return False
        return True

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        return self._con

    @contextmanager
    def _failing_as(self, query: Query) -> Iterator[None]:
        """DuckDB errors of `query` (running or fetching) as WarehouseError; running out of
        the connection's memory says which limit and how to raise it (a service's
        connection is bounded: `open_warehouse(bounded=True)`)."""
        try:
            yield
        except duckdb.OutOfMemoryException as exc:
            raise WarehouseError(
                f"query {query.name} needs more than the warehouse connection's memory "
                f"limit ({self.memory_limit}); raise REVOPS_WAREHOUSE_MEMORY_LIMIT "
                f"(DuckDB: {str(exc).splitlines()[0]})"
            ) from exc
        except duckdb.Error as exc:
            raise WarehouseError(f"query {query.name} failed: {exc}") from exc

    def _execute(self, query: Query, params: Params | None) -> duckdb.DuckDBPyConnection:
        sql, values = query.bind(params)
        with self._failing_as(query):
            return self._con.cursor().execute(sql, list(values))

    @staticmethod
    def _rows(cur: duckdb.DuckDBPyConnection, raw: list[tuple[Any, ...]]) -> list[Row]:
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in raw]

    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        cur = self._execute(query, params)
        with self._failing_as(query):
            raw = cur.fetchall()
        return self._rows(cur, raw)

    def fetch_chunks(
        self, query: Query, params: Params | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> Iterator[list[Row]]:
        cur = self._execute(query, params)
        while True:
            with self._failing_as(query):
                batch = cur.fetchmany(chunk_rows)
            if not batch:
                return
            yield self._rows(cur, batch)

    def fetch_columns(self, query: Query, params: Params | None = None) -> Columns:
        cur = self._execute(query, params)
        with self._failing_as(query):
            raw = cur.fetchall()
        names = [d[0] for d in cur.description or []]
        # fetchall's tuples turned into columns in C; fetchnumpy would load numpy (~15 MB)
        columns = zip(*raw, strict=True) if raw else ((),) * len(names)
        return dict(zip(names, columns, strict=True))

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
