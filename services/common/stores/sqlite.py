"""The embedded engine: one SQLite file in WAL mode, shared by every service process on the
host (the default of `make run`; no server).

Why SQLite (WAL) and not DuckDB: every agent runs in its own process and several of them
write at the same time. A DuckDB file can be opened for writing by one process only, so it
would force a server or a single writer process. SQLite in WAL mode lets any number of
processes read while one writes, serialises writers with a file lock, and needs no server.
Writers take the lock up front (`BEGIN IMMEDIATE`), keep transactions short, and wait for a
busy lock (`busy_timeout`) instead of failing.

Within one process, writers of a file also queue on a `threading.Lock` before `BEGIN
IMMEDIATE` (`_WriterQueue`). SQLite's busy handler polls: a writer that finds the file
locked sleeps 1 ms, then 2, 5, 10, ... ms before trying again, even when the other writer
commits 100 us later. A service that runs a batch's partition groups (or two subscriptions)
on worker threads had its writers meet that way all the time (the execution agent at 30
flows/s: ~40 such sleeps a second, 1.3 ms each). A lock hands the file over the moment the
other commits and costs nothing when free; SQLite allows one writer at a time anyway. Other
processes on the same file still wait with `busy_timeout`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from services.common.sqlite import connect as sqlite_connect
from services.common.stores.database import SQLITE, Connection, Database

BUSY_TIMEOUT_S = 15.0
_ENDS = ("COMMIT", "ROLLBACK")

# Connections this process opened. A forked child inherits them but must never use or close
# them: closing one runs SQLite's last-connection checkpoint and WAL cleanup from the child,
# behind the parent's back, which loses other processes' writes. So after a fork the child
# keeps them referenced (never closed) and opens its own (see `SQLiteDatabase.connect`).
# Strong references, because a child drops the other threads' thread-locals, which would
# close them.
_OPENED: dict[int, sqlite3.Connection] = {}
_INHERITED: list[sqlite3.Connection] = []


class _WriterQueue:
    """This process's writers of one file, one at a time (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def enter(self, timeout_s: float) -> None:
        # As long as SQLite would wait for another process, and the same error after it.
        if not self._lock.acquire(timeout=timeout_s):
            raise sqlite3.OperationalError(
                f"database is locked: another thread of this process kept writing for "
                f"{timeout_s:g} s"
            )

    def leave(self) -> None:
        self._lock.release()


# By resolved file path: every `SQLiteDatabase` of a file in this process shares one queue.
_WRITERS: dict[Path, _WriterQueue] = {}
_WRITERS_LOCK = threading.Lock()


def _writers_of(path: Path) -> _WriterQueue:
    key = path.resolve()
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(key, _WriterQueue())


def _after_fork_in_child() -> None:
    global _WRITERS_LOCK
    _INHERITED.extend(_OPENED.values())
    _OPENED.clear()
    # A lock held by a parent's thread at the fork would stay held forever in the child.
    _WRITERS.clear()
    _WRITERS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


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
        self._writers: tuple[int, _WriterQueue] | None = None  # (pid, this file's queue)
        self._init_schema()

    def _writer_queue(self) -> _WriterQueue:
        pid = os.getpid()
        if self._writers is None or self._writers[0] != pid:  # a forked child: its own
            self._writers = (pid, _writers_of(self.path))
        return self._writers[1]

    def _command(self, conn: Connection, sql: str) -> None:
        """BEGIN IMMEDIATE once this process's other writers of the file are done (the
        writer queue); a COMMIT or ROLLBACK that ran hands the queue on."""
        if sql == self._BEGIN_WRITE:
            writers = self._writer_queue()
            writers.enter(BUSY_TIMEOUT_S)
            try:
                conn.execute(sql)
            except BaseException:
                writers.leave()
                raise
            self._local.writing = writers
            return
        conn.execute(sql)
        if sql in _ENDS:
            self._stop_writing()

    def _stop_writing(self) -> None:
        writers: _WriterQueue | None = getattr(self._local, "writing", None)
        if writers is not None:
            self._local.writing = None
            writers.leave()

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
        """The thread keeps its connection (see the class docstring). A write transaction
        whose COMMIT and ROLLBACK both failed hands the writer queue on here."""
        self._stop_writing()

    def _init_schema(self) -> None:
        """Subclasses create or migrate their tables here (called once by __init__)."""
