"""The shared engine: PostgreSQL through psycopg 3 and a connection pool, selected by
`REVOPS_DATABASE_URL`. Every replica of every service reads and writes the same tables, so
the state follows the work wherever Kafka assigns it.

Repositories write `?` placeholders (the embedded engine's); `_to_postgres` numbers them
(`$1`, `$2`, ...) once per statement text, for psycopg's raw cursor, which sends the text as
is (no `%s` parsing per statement). Transactions are explicit (`BEGIN` ... `COMMIT` on an
autocommit connection), exactly as in the SQLite engine, so nesting (savepoints) behaves the
same; a write that reads a row it will change locks it (`Dialect.for_update`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool, PoolTimeout

from services.common.stores.database import POSTGRESQL, Connection, Database

# Connections are kept per thread: the event loop, the housekeeping timers' threads, and
# the threads a service hands store calls to.
POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_S = 10.0


class Row(tuple[Any, ...]):
    """A row readable by position and by column name (like sqlite3.Row)."""

    _index: dict[str, int]

    def __new__(cls, values: Any, index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._index[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    """Rows indexed by the result's column names, read straight from the result (psycopg's
    `description` builds a Column object per column of every result: a measurable share of
    a statement's client CPU)."""
    result = cursor.pgresult
    nfields = result.nfields if result is not None else 0
    names = tuple(result.fname(i) or b"" for i in range(nfields)) if result is not None else ()
    index = _column_index(names)

    def make(values: Any) -> Row:
        return Row(values, index)

    return make


@lru_cache(maxsize=1024)
def _column_index(names: tuple[bytes, ...]) -> dict[str, int]:
    """Shared by every row of every result with these columns (never mutated)."""
    return {name.decode(): i for i, name in enumerate(names)}


@lru_cache(maxsize=1024)
def _to_postgres(sql: str) -> str:
    """`?` placeholders numbered in order: `$1`, `$2`, ..."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


class _Result:
    """What a statement returned (the `Cursor` repositories read), taken off the shared
    cursor before the next statement runs on it."""

    __slots__ = ("_next", "_rows", "rowcount")

    def __init__(self, rowcount: int, rows: list[Row]) -> None:
        self.rowcount = rowcount
        self._rows = rows
        self._next = 0

    def fetchone(self) -> Row | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Row]:
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Row]:
        while (row := self.fetchone()) is not None:
            yield row


class _Connection:
    """A psycopg connection that takes the repositories' `?` SQL.

    Transaction control (BEGIN, COMMIT, ROLLBACK, savepoints) goes straight to libpq as a
    simple query, past psycopg's cursor machinery (adapting, preparing, result wrapping):
    it has no parameters and no rows, and that machinery costs more client CPU than the
    server spends on the command. Savepoint commands (`defer`) wait and go out together,
    ahead of the next statement or COMMIT, in one simple query: a nested step of a batch
    transaction is `RELEASE nested_1; SAVEPOINT nested_1` (the previous step's end and this
    one's start), then its statements. A deferred command that fails raises from the
    statement or COMMIT it went with, which is then not run (the server skips the rest of a
    query string after an error), so nothing that failed is ever committed.

    Not BEGIN: a kept connection the server dropped must fail on it, where
    `Database._begin` can still replace it.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn
        self._deferred: list[str] = []
        # One cursor for every statement (a new one per statement costs a quarter of the
        # client's CPU for a small one): each result is read off it at once (`_Result`).
        self._cursor = psycopg.RawCursor(conn, row_factory=_row_factory)

    def defer(self, command: str) -> None:
        self._deferred.append(command)

    def command(self, sql: str) -> None:
        """BEGIN, COMMIT or ROLLBACK, with the deferred savepoint commands ahead of it."""
        if sql == "ROLLBACK":  # the whole transaction goes: its savepoints' commands are moot
            self._deferred.clear()
        commands, self._deferred = [*self._deferred, sql], []
        self._simple_query("; ".join(commands))

    def execute(self, sql: str, parameters: Any = (), /) -> _Result:
        self._flush_deferred()
        cursor = self._cursor
        cursor.execute(_to_postgres(sql), tuple(parameters))
        result = cursor.pgresult
        returned = result is not None and result.status == pq.ExecStatus.TUPLES_OK
        return _Result(cursor.rowcount, cursor.fetchall() if returned else [])

    def executemany(self, sql: str, parameters: Any, /) -> _Result:
        rows = [tuple(p) for p in parameters]
        if not rows:
            return _Result(0, [])
        self._flush_deferred()
        self._cursor.executemany(_to_postgres(sql), rows)
        return _Result(self._cursor.rowcount, [])

    def _flush_deferred(self) -> None:
        if self._deferred:
            commands, self._deferred = self._deferred, []
            self._simple_query("; ".join(commands))

    def _simple_query(self, sql: str) -> None:
        """Run `sql` (no parameters, no rows) through libpq; raise psycopg's error for it."""
        pgconn = self.raw.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError("the connection is closed")
        result = pgconn.exec_(sql.encode())
        if result.status == pq.ExecStatus.COMMAND_OK:
            return
        if pgconn.status != pq.ConnStatus.OK:  # the server went away meanwhile
            message = result.get_error_message() or "the connection was lost"
            raise psycopg.OperationalError(message)
        raise psycopg.errors.error_from_result(result, encoding=self.raw.info.encoding)


# One pool per database URL per process (a forked child opens its own).
_POOLS: dict[tuple[str, int], ConnectionPool[psycopg.Connection[Any]]] = {}
_POOLS_LOCK = threading.Lock()


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.autocommit = True


def pool_for(url: str) -> ConnectionPool[psycopg.Connection[Any]]:
    key = (url, os.getpid())
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ConnectionPool(
                url,
                min_size=1,
                max_size=POOL_MAX_SIZE,
                configure=_configure,
                timeout=CONNECT_TIMEOUT_S,
                open=False,
                name="revops",
            )
            pool.open(wait=False)
        return pool


def close_pools() -> None:
    with _POOLS_LOCK:
        for (_, pid), pool in list(_POOLS.items()):
            if pid == os.getpid():
                pool.close()
        _POOLS.clear()


class PostgresDatabase(Database):
    dialect = POSTGRESQL
    integrity_error = (psycopg.errors.IntegrityError,)
    _BEGIN_READ = None  # one statement per round trip; a reader's statements are few
    _AUTOCOMMIT_ONE_STATEMENT = True

    def __init__(self, url: str, keep_connections: bool = True) -> None:
        """`keep_connections`: each thread keeps its connection between transactions (a
        service's few threads); False returns it to the pool after each one, for a process
        whose many short-lived request threads would otherwise hold more connections than
        the pool has (the console's page handlers)."""
        super().__init__()
        self.url = url
        self._pool = pool_for(url)
        self._keep_connections = keep_connections

    def _unavailable(self, exc: BaseException) -> bool:
        """A lost or refused connection, or no connection free in time; not a conflict
        between transactions (deadlock, serialization), which a plain retry resolves."""
        if isinstance(exc, PoolTimeout):
            return True
        return isinstance(exc, psycopg.OperationalError) and not isinstance(
            exc, psycopg.errors.TransactionRollback
        )

    def close(self) -> None:
        """The pool is shared by every store of the process (`close_pools` at exit)."""

    def _command(self, conn: Connection, sql: str) -> None:
        assert isinstance(conn, _Connection)
        conn.command(sql)

    def _savepoint_command(self, conn: Connection, sql: str) -> None:
        assert isinstance(conn, _Connection)
        conn.defer(sql)

    def _acquire(self) -> Connection:
        """This thread's connection, kept between transactions (a pool checkout per
        transaction costs more CPU than the statements of a small one)."""
        conn: _Connection | None = getattr(self._local, "pg", None)
        if conn is None or conn.raw.closed:
            if conn is not None:
                self._pool.putconn(conn.raw)  # closed: the pool replaces it
            conn = self._local.pg = _Connection(self._pool.getconn())
        return conn

    def _release(self, conn: Connection, broken: bool) -> None:
        """A broken connection goes back to the pool closed (the pool replaces it); a good
        one stays with its thread (unless connections are not kept)."""
        if not broken and self._keep_connections:
            return
        assert isinstance(conn, _Connection)
        self._local.pg = None
        if broken and not conn.raw.closed:
            conn.raw.close()
        self._pool.putconn(conn.raw)
