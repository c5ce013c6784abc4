"""SQLite writers of one process queue on a lock before `BEGIN IMMEDIATE`
(services/common/stores/sqlite.py): a second thread waits for the first to commit instead of
polling SQLite's busy lock, the queue is handed on however a transaction ends, and a forked
child never inherits it held.

The connections here get a busy timeout of 0 (SQLite's own wait switched off), so a writer
that met another one in SQLite rather than in the queue fails at once with "database is
locked"."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common import sqlite as sqlite_module
from services.common.stores import sqlite as store_module
from services.common.stores.sqlite import SQLiteDatabase

JOIN_S = 30.0  # generous: only a broken queue makes a test wait this long


class Rows(SQLiteDatabase):
    def _init_schema(self) -> None:
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (v TEXT)")

    def values(self) -> list[str]:
        with self.reader() as conn:
            return sorted(r[0] for r in conn.execute("SELECT v FROM t"))


@pytest.fixture
def no_busy_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    real = sqlite_module.connect

    def connect(path: Path, *, timeout_s: float = 30.0) -> sqlite3.Connection:
        return real(path, timeout_s=0)

    monkeypatch.setattr(store_module, "sqlite_connect", connect)


@pytest.fixture
def db(tmp_path: Path, no_busy_wait: None) -> Iterator[Rows]:
    yield Rows(tmp_path / "state.db")


def _in_thread(target: object) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _another_thread_writes(db: Rows, value: str) -> None:
    """A write from a new thread, which must get the file at once (the queue is free)."""

    def write() -> None:
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (?)", (value,))

    thread, errors = _in_thread(write)
    thread.join(JOIN_S)
    assert not thread.is_alive() and errors == []


def test_a_second_writer_waits_for_the_first_to_commit(db: Rows) -> None:
    first_holds, second_starts = threading.Event(), threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES ('first')")
            first_holds.set()
            release_first.wait(JOIN_S)

    def second() -> None:
        second_starts.set()
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES ('second')")

    one, one_errors = _in_thread(first)
    assert first_holds.wait(JOIN_S)
    two, two_errors = _in_thread(second)
    assert second_starts.wait(JOIN_S)
    two.join(0.2)
    assert two.is_alive(), "the second writer must wait while the first one holds the file"
    release_first.set()
    one.join(JOIN_S)
    two.join(JOIN_S)
    assert one_errors == [] and two_errors == []
    assert db.values() == ["first", "second"]


def test_many_threads_write_without_meeting_in_sqlite(db: Rows) -> None:
    def writer(n: int) -> None:
        for i in range(25):
            with db.transaction() as conn:
                conn.execute("INSERT INTO t VALUES (?)", (f"{n}-{i:02d}",))

    threads = [_in_thread(lambda n=n: writer(n)) for n in range(4)]
    for thread, _ in threads:
        thread.join(JOIN_S)
    assert [e for _, errors in threads for e in errors] == []
    assert len(db.values()) == 100


@pytest.mark.parametrize("how", ["raises", "one_statement", "reader_inside"])
def test_the_queue_is_handed_on_however_a_transaction_ends(db: Rows, how: str) -> None:
    if how == "raises":
        with pytest.raises(ValueError), db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES ('undone')")
            raise ValueError("the step failed")
    elif how == "one_statement":
        with db.one_statement() as conn:
            conn.execute("INSERT INTO t VALUES ('alone')")
    else:
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES ('outer')")
            with db.reader() as inner:
                inner.execute("SELECT count(*) FROM t").fetchone()

    _another_thread_writes(db, "next")
    assert "next" in db.values() and "undone" not in db.values()


def test_a_failed_begin_hands_the_queue_on(db: Rows, tmp_path: Path) -> None:
    # Another process's connection holds SQLite's write lock: BEGIN IMMEDIATE fails at
    # once (busy timeout 0); the queue must not stay taken by the failed writer.
    blocker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"), db.transaction():
        pass
    blocker.execute("ROLLBACK")
    blocker.close()

    _another_thread_writes(db, "after")
    assert db.values() == ["after"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_child_forked_while_the_queue_is_taken_has_its_own(db: Rows) -> None:
    # A parent's thread holds the queue at the fork (between taking it and BEGIN: SQLite
    # itself cannot be carried across a fork inside a transaction). The child's writers
    # must not wait for a thread it does not have.
    queue = db._writer_queue()
    queue.enter(JOIN_S)
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                with db.transaction() as conn:
                    conn.execute("INSERT INTO t VALUES ('child')")
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        queue.leave()
    assert os.waitstatus_to_exitcode(status) == 0
    assert db.values() == ["child"]
