"""The embedded engine: one SQLite file in WAL mode, shared by every service process on the
host (the default of `make run`; no server).

Why SQLite (WAL) and not DuckDB: every agent runs in its own process and several of them
write at the same time. A DuckDB file can be opened for writing by one process only, so it
would force a server or a single writer process. SQLite in WAL mode lets any number of
processes read while one writes, serialises writers with a file lock, and needs no server.
Writers take the lock up front (`BEGIN IMMEDIATE`), keep transactions short, and wait for a
busy lock (`busy_timeout`) instead of failing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from services.common.sqlite import connect as sqlite_connect
from services.common.stores.database import SQLITE, Connection, Database

BUSY_TIMEOUT_S = 15.0

# Connections this process opened. A forked child inherits them but must never use or close
# them: closing one runs SQLite's last-connection checkpoint and WAL cleanup from the child,
# behind the parent's back, which loses other processes' writes. So after a fork the child
# keeps them referenced (never closed) and opens its own (see `SQLiteDatabase.connect`).
# Strong references, because a child drops the other threads' thread-locals, which would
# close them.
_OPENED: dict[int, sqlite3.Connection] = {}
_INHERITED: list[sqlite3.Connection] = []


def _keep_inherited_connections() -> None:
    _INHERITED.extend(_OPENED.values())
    _OPENED.clear()


os.register_at_fork(after_in_child=_keep_inherited_connections)


class SQLiteDatabase(Database):
    """Each thread of each process keeps its own connection (sqlite3 connections must not
    be shared by concurrent threads, nor carried across `fork`). Reopening per unit of work
    would be simpler but costs a WAL checkpoint whenever the last connection closes (about
    10 ms per write here)."""

    dialect = SQLITE
    integrity_error = (sqlite3.IntegrityError,)
    _BEGIN_WRITE = "BEGIN IMMEDIATE"
    _BEGIN_READ = "BEGIN DEFERRED"

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_schema()

    def connect(self) -> sqlite3.Connection:
        """This thread's connection: WAL, busy timeout, autocommit (services.common.sqlite)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite_connect(self.path, timeout_s=BUSY_TIMEOUT_S)
            conn.row_factory = sqlite3.Row
            _OPENED[id(conn)] = conn
            self._local.conn, self._local.pid = conn, os.getpid()
            self._local.depth = 0
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            _OPENED.pop(id(conn), None)
            conn.close()
        self._local.conn = None

    # The same transactions, typed for the SQLite-only readers (the console attaches files).
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with super().transaction() as conn:
            yield cast(sqlite3.Connection, conn)

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        with super().reader() as conn:
            yield cast(sqlite3.Connection, conn)

    def _acquire(self) -> Connection:
        return self.connect()

    def _release(self, conn: Connection, broken: bool) -> None:
        """The thread keeps its connection (see the class docstring)."""

    def _init_schema(self) -> None:
        """Subclasses create or migrate their tables here (called once by __init__)."""
