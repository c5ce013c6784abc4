"""The embedded state store: one SQLite file in WAL mode, shared by every service process.

Why SQLite (WAL) and not DuckDB: every agent runs in its own process and several of them
write insights, executions and health records at the same time. A DuckDB file can be
opened for writing by one process only (a second writer gets a lock error), so it would
force a server or a single writer process. SQLite in WAL mode lets any number of
processes read while one writes, serialises writers with a file lock, and needs no
server. Writers take the lock up front (`BEGIN IMMEDIATE`), keep transactions short, and
wait for a busy lock (`busy_timeout`) instead of failing.

In production the same tables live in Firebolt (`revops_ai_insights`,
`revops_ai_insight_audit`, `revops_ai_executions`, `revops_ai_health`); `schema.sql` is
their embedded twin, column for column.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.common.settings import get_settings
from services.common.sqlite import connect as sqlite_connect

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
DEFAULT_DB_NAME = "revops.db"
BUSY_TIMEOUT_S = 15.0


def default_db_path() -> Path:
    return get_settings().resolved_state_dir / DEFAULT_DB_NAME


def to_db_time(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with fixed precision, so text order equals time order."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def to_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def from_json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


# Connections this process opened. A forked child inherits them but must never use or close
# them: closing one runs SQLite's last-connection checkpoint and WAL cleanup from the child,
# behind the parent's back, which loses other processes' writes. So after a fork the child
# keeps them referenced (never closed) and opens its own (see `Store.connect`). Strong
# references, because a child drops the other threads' thread-locals, which would close them.
_OPENED: dict[int, sqlite3.Connection] = {}
_INHERITED: list[sqlite3.Connection] = []


def _keep_inherited_connections() -> None:
    _INHERITED.extend(_OPENED.values())
    _OPENED.clear()


os.register_at_fork(after_in_child=_keep_inherited_connections)


class Store:
    """One SQLite file; creates the schema on first use.

    Each thread of each process keeps its own connection (sqlite3 connections must not be
    shared by concurrent threads, nor carried across `fork`). Reopening per unit of work
    would be simpler but costs a WAL checkpoint whenever the last connection closes (about
    10 ms per write here).
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._init_schema()

    @property
    def database_name(self) -> str:
        return "sqlite"

    def connect(self) -> sqlite3.Connection:
        """This thread's connection: WAL, busy timeout, autocommit (services.common.sqlite)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite_connect(self.path, timeout_s=BUSY_TIMEOUT_S)
            conn.row_factory = sqlite3.Row
            _OPENED[id(conn)] = conn
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            _OPENED.pop(id(conn), None)
            conn.close()
        self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the write lock from its first statement.

        Re-entrant: inside another transaction of this thread it is a savepoint, so a
        service step can make several repository calls one atomic unit with one commit
        (a commit is most of the cost of a small write here), while each call still undoes
        its own writes when it fails.
        """
        with self._in("BEGIN IMMEDIATE") as conn:
            yield conn

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot, never blocked by writers (WAL).
        Inside a transaction it reads that transaction's own writes."""
        with self._in("BEGIN DEFERRED") as conn:
            yield conn

    @contextmanager
    def _in(self, begin: str) -> Iterator[sqlite3.Connection]:
        conn = self.connect()
        depth: int = getattr(self._local, "depth", 0)
        savepoint = f"nested_{depth}"
        conn.execute(f"SAVEPOINT {savepoint}" if depth else begin)
        self._local.depth = depth + 1
        try:
            yield conn
        except BaseException:
            if depth:
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")
            else:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._local.depth = depth
        conn.execute(f"RELEASE {savepoint}" if depth else "COMMIT")

    def _init_schema(self) -> None:
        conn = self.connect()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"could not switch {self.path} to WAL mode (got {mode})")
        conn.executescript(SCHEMA_FILE.read_text())
