"""A fake Firebolt at the HTTP layer, for the real firebolt-sdk (httpx's transport is
replaced; nothing leaves the process).

It speaks the endpoints the SDK calls with client credentials: token (id.<host>/oauth/token),
system engine URL (/web/v3/account/<account>/engineUrl), `USE DATABASE` / `USE ENGINE` on the
system engine (answered with Firebolt-Update-Parameters / Firebolt-Update-Endpoint headers),
then queries on the user engine. The engine runs the received SQL with the received
server-side parameters on a DuckDB connection and answers in Firebolt's JSON formats, so a
test checks the SQL and parameters sent and the rows parsed back. Firebolt's `PRIMARY INDEX`
clause of CREATE TABLE (no DuckDB twin) is recorded and dropped before DuckDB runs it.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs

import duckdb
import httpx
import pytest

# What `FireboltWarehouse.from_env` / `FireboltInsightSink.from_env` read to reach the fake.
FIREBOLT_ENV = {
    "REVOPS_FIREBOLT_ACCOUNT": "acme",
    "REVOPS_FIREBOLT_DATABASE": "revops",
    "REVOPS_FIREBOLT_ENGINE": "analytics",
    "REVOPS_FIREBOLT_CLIENT_ID": "cid",
    "REVOPS_FIREBOLT_CLIENT_SECRET": "secret",
    "REVOPS_FIREBOLT_API_ENDPOINT": "api.fake-firebolt.test",
}
_PRIMARY_INDEX = re.compile(r"\)\s*PRIMARY INDEX\s+([\w, ]+)$")

ENGINE_HOST = "engine-1.fake-firebolt.test"
FB_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "long",
    "DOUBLE": "double",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
    "INTEGER": "int",
}


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    return v


class FakeFirebolt:
    def __init__(self, db: duckdb.DuckDBPyConnection) -> None:
        self.db = db
        self.requests: list[httpx.Request] = []
        self.queries: list[tuple[str, list[Any], str]] = []  # sql, parameters, output format
        self.primary_indexes: dict[str, str] = {}  # table: its PRIMARY INDEX columns

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Answer every request the SDK makes through httpx."""
        server = self

        def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
            request.read()
            return server.handle(request)

        monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle_request)

    def _duckdb_sql(self, sql: str) -> str:
        index = _PRIMARY_INDEX.search(sql)
        if sql.startswith("CREATE TABLE") and index:
            self.primary_indexes[sql.split()[5 if "IF NOT EXISTS" in sql else 2]] = index[1]
            return sql[: index.start() + 1]
        return sql

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = request.url
        if url.path == "/oauth/token":
            form = parse_qs(request.content.decode())
            assert form["client_id"] == ["cid"] and form["client_secret"] == ["secret"]
            assert form["grant_type"] == ["client_credentials"]
            return httpx.Response(200, json={"access_token": "tok-1", "expires_in": 3600})
        assert request.headers["Authorization"] == "Bearer tok-1"
        if url.path == "/web/v3/account/acme/engineUrl":
            return httpx.Response(200, json={"engineUrl": "system.fake-firebolt.test"})
        sql = request.content.decode()
        if sql.startswith("USE DATABASE"):
            assert sql == 'USE DATABASE "revops"'
            return self._result([], [], headers={"Firebolt-Update-Parameters": "database=revops"})
        if sql.startswith("USE ENGINE"):
            assert sql == 'USE ENGINE "analytics"'
            return self._result(
                [],
                [],
                headers={"Firebolt-Update-Endpoint": f"https://{ENGINE_HOST}?engine=analytics"},
            )
        assert url.host == ENGINE_HOST
        assert url.params["database"] == "revops"
        params = json.loads(url.params.get("query_parameters", "[]"))
        values = [p["value"] for p in params]
        assert [p["name"] for p in params] == [f"${i + 1}" for i in range(len(params))]
        self.queries.append((sql, values, url.params["output_format"]))
        cur = self.db.execute(self._duckdb_sql(sql), values)
        cols = [(d[0], FB_TYPES[str(d[1]).split("(")[0]]) for d in cur.description or []]
        rows = [[_value(v) for v in r] for r in cur.fetchall()]
        if url.params["output_format"] == "JSONLines_Compact":
            return self._stream(cols, rows)
        return self._result(cols, rows)

    @staticmethod
    def _result(
        cols: list[tuple[str, str]], rows: list[list[Any]], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = {
            "meta": [{"name": n, "type": f"{t} null"} for n, t in cols],
            "data": rows,
            "rows": len(rows),
            "statistics": {"elapsed": 0.001, "rows_read": len(rows), "bytes_read": 10},
        }
        return httpx.Response(200, json=body, headers=headers or {})

    @staticmethod
    def _stream(cols: list[tuple[str, str]], rows: list[list[Any]]) -> httpx.Response:
        lines: list[dict[str, Any]] = [
            {
                "message_type": "START",
                "query_id": "q1",
                "query_label": "",
                "request_id": "r1",
                "result_columns": [{"name": n, "type": f"{t} null"} for n, t in cols],
            }
        ]
        for i in range(0, len(rows), 3):  # several DATA records, as a real engine sends
            lines.append({"message_type": "DATA", "data": rows[i : i + 3]})
        lines.append(
            {
                "message_type": "FINISH_SUCCESSFULLY",
                "statistics": {"elapsed": 0.001, "rows_read": len(rows)},
            }
        )
        return httpx.Response(200, content="\n".join(json.dumps(x) for x in lines).encode())
