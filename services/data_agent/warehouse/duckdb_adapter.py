"""The embedded warehouse: a DuckDB file, opened read-only so many processes read at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb

from services.data_agent.warehouse.base import (
    DEFAULT_CHUNK_ROWS,
    Params,
    Row,
    WarehouseError,
)
from services.data_agent.warehouse.queries import Query


class DuckDBWarehouse:
    engine = "duckdb"

    def __init__(self, path: Path | str, *, read_only: bool = True) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise WarehouseError(
                f"warehouse file {self.path} does not exist; create it with "
                "`revops warehouse seed` or `revops warehouse load --from DIR`"
            )
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open warehouse {self.path}: {exc}") from exc

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        return self._con

    def _execute(self, query: Query, params: Params | None) -> duckdb.DuckDBPyConnection:
        sql, values = query.bind(params)
        try:
            return self._con.cursor().execute(sql, list(values))
        except duckdb.Error as exc:
            raise WarehouseError(f"query {query.name} failed: {exc}") from exc

    @staticmethod
    def _rows(cur: duckdb.DuckDBPyConnection, raw: list[tuple[Any, ...]]) -> list[Row]:
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in raw]

    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        cur = self._execute(query, params)
        return self._rows(cur, cur.fetchall())

    def fetch_chunks(
        self, query: Query, params: Params | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> Iterator[list[Row]]:
        cur = self._execute(query, params)
        while batch := cur.fetchmany(chunk_rows):
            yield self._rows(cur, batch)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
