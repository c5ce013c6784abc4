"""Firebolt adapter (production warehouse) on firebolt-sdk.

Configured by `REVOPS_FIREBOLT_ACCOUNT`, `_DATABASE`, `_ENGINE`, `_CLIENT_ID`,
`_CLIENT_SECRET` (and optionally `_API_ENDPOINT`). Queries are the same named SQL as on
DuckDB, sent with server-side parameters (`fb_numeric`: the SQL carries `$1..$n`, values
travel separately as `query_parameters`), so no value is ever formatted into SQL text.
Large results are streamed (`execute_stream`, JSON lines) and read with `fetchmany`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import firebolt.db
from firebolt.client.auth import ClientCredentials
from firebolt.utils.exception import FireboltError

from services.data_agent.warehouse.base import DEFAULT_CHUNK_ROWS, Params, Row, WarehouseError
from services.data_agent.warehouse.queries import Query

ENV_PREFIX = "REVOPS_FIREBOLT_"
REQUIRED_ENV = ("ACCOUNT", "DATABASE", "ENGINE", "CLIENT_ID", "CLIENT_SECRET")
DEFAULT_API_ENDPOINT = "api.app.firebolt.io"

Connect = Callable[..., Any]


class FireboltWarehouse:
    engine = "firebolt"
    # Server-side parameters travel in the request URL (`query_parameters`, ~75 bytes per
    # id once encoded): 100 ids keep it near 8 KB, under common proxy URL limits.
    max_bound_ids = 100

    def __init__(
        self,
        *,
        account: str,
        database: str,
        engine_name: str,
        client_id: str,
        client_secret: str,
        api_endpoint: str = DEFAULT_API_ENDPOINT,
        connect: Connect = firebolt.db.connect,
    ) -> None:
        self.account = account
        self.database = database
        self.engine_name = engine_name
        self.api_endpoint = api_endpoint
        self._auth = ClientCredentials(client_id, client_secret, use_token_cache=False)
        self._connect = connect
        self._connection: Any = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FireboltWarehouse:
        env = os.environ if env is None else env
        missing = [ENV_PREFIX + k for k in REQUIRED_ENV if not env.get(ENV_PREFIX + k)]
        if missing:
            raise WarehouseError(f"Firebolt warehouse needs {', '.join(missing)}")
        return cls(
            account=env[ENV_PREFIX + "ACCOUNT"],
            database=env[ENV_PREFIX + "DATABASE"],
            engine_name=env[ENV_PREFIX + "ENGINE"],
            client_id=env[ENV_PREFIX + "CLIENT_ID"],
            client_secret=env[ENV_PREFIX + "CLIENT_SECRET"],
            api_endpoint=env.get(ENV_PREFIX + "API_ENDPOINT") or DEFAULT_API_ENDPOINT,
        )

    def _conn(self) -> Any:
        if self._connection is None:
            # Server-side parameters are selected by the driver's module-level paramstyle;
            # this adapter is the only Firebolt user in a process.
            firebolt.db.paramstyle = "fb_numeric"
            try:
                self._connection = self._connect(
                    auth=self._auth,
                    account_name=self.account,
                    database=self.database,
                    engine_name=self.engine_name,
                    api_endpoint=self.api_endpoint,
                    disable_cache=True,
                )
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
