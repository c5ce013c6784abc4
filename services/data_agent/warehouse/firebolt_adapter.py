"""Firebolt adapter (production warehouse) on firebolt-sdk.

Configured by `REVOPS_FIREBOLT_ACCOUNT`, `_DATABASE`, `_ENGINE`, `_CLIENT_ID`,
`_CLIENT_SECRET` (and optionally `_API_ENDPOINT`), read by services/common/firebolt.py.
Queries are the same named SQL as on DuckDB, sent with server-side parameters
(`fb_numeric`: the SQL carries `$1..$n`, values travel separately as `query_parameters`),
so no value is ever formatted into SQL text.
Large results are streamed (`execute_stream`, JSON lines) and read with `fetchmany`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from firebolt.utils.exception import FireboltError

from services.common.firebolt import FireboltSettings, FireboltSettingsError
from services.data_agent.warehouse.base import (
    DEFAULT_CHUNK_ROWS,
    Columns,
    Params,
    Row,
    WarehouseError,
    rows_to_columns,
)
from services.data_agent.warehouse.queries import Query


class FireboltWarehouse:
    engine = "firebolt"
    # Server-side parameters travel in the request URL (`query_parameters`, ~75 bytes per
    # id once encoded): 100 ids keep it near 8 KB, under common proxy URL limits.
    max_bound_ids = 100

    def __init__(self, settings: FireboltSettings) -> None:
        self.settings = settings
        self._connection: Any = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FireboltWarehouse:
        try:
            return cls(FireboltSettings.from_env(env))
        except FireboltSettingsError as exc:
            raise WarehouseError(f"the warehouse: {exc}") from None

    def _conn(self) -> Any:
        if self._connection is None:
            try:
                self._connection = self.settings.connect()
            except FireboltError as exc:
                raise WarehouseError(f"cannot connect to Firebolt: {exc}") from exc
        return self._connection

    @staticmethod
    def _rows(cursor: Any, raw: list[list[Any]]) -> list[Row]:
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, r, strict=True)) for r in raw]

    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        sql, values = query.bind_numeric(params)
        cursor = self._conn().cursor()
        try:
            cursor.execute(sql, values)
            return self._rows(cursor, cursor.fetchall())
        except FireboltError as exc:
            raise WarehouseError(f"query {query.name} failed: {exc}") from exc
        finally:
            cursor.close()

    def fetch_columns(self, query: Query, params: Params | None = None) -> Columns:
        return rows_to_columns(self.fetch_all(query, params))

    def fetch_chunks(
        self, query: Query, params: Params | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> Iterator[list[Row]]:
        sql, values = query.bind_numeric(params)
        cursor = self._conn().cursor()
        try:
            cursor.execute_stream(sql, values)
            while batch := cursor.fetchmany(chunk_rows):
                yield self._rows(cursor, batch)
        except FireboltError as exc:
            raise WarehouseError(f"query {query.name} failed: {exc}") from exc
        finally:
            cursor.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
