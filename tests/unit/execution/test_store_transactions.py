"""Store transactions nest as savepoints: one commit per service step, while a failed inner
step still undoes exactly its own writes."""

from __future__ import annotations

import sqlite3

import pytest

from services.execution_agent.store import Store


def _scratch_table(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS scratch (k TEXT PRIMARY KEY)")


def _keys(store: Store) -> list[str]:
    with store.reader() as conn:
        return [r[0] for r in conn.execute("SELECT k FROM scratch ORDER BY k")]


def test_a_failed_inner_step_undoes_only_its_own_writes(store: Store) -> None:
    _scratch_table(store)
    with store.transaction() as conn:
        conn.execute("INSERT INTO scratch VALUES ('outer')")
        with pytest.raises(RuntimeError), store.transaction() as inner:
            inner.execute("INSERT INTO scratch VALUES ('inner')")
            raise RuntimeError("step failed")
        with store.reader() as reader:  # reads the enclosing transaction's own writes
            assert [r[0] for r in reader.execute("SELECT k FROM scratch")] == ["outer"]
    assert _keys(store) == ["outer"]


def test_a_failure_after_inner_steps_undoes_everything(store: Store) -> None:
    _scratch_table(store)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        with store.transaction() as inner:
            inner.execute("INSERT INTO scratch VALUES ('inner')")
        conn.execute("INSERT INTO scratch VALUES ('outer')")
        raise RuntimeError("late failure")
    assert _keys(store) == []


def test_nested_steps_commit_once_and_other_connections_see_it_only_then(store: Store) -> None:
    _scratch_table(store)
    other = sqlite3.connect(store.path)
    with store.transaction() as conn:
        with store.transaction() as inner:
            inner.execute("INSERT INTO scratch VALUES ('a')")
        assert other.execute("SELECT count(*) FROM scratch").fetchone()[0] == 0
        conn.execute("INSERT INTO scratch VALUES ('b')")
    assert other.execute("SELECT count(*) FROM scratch").fetchone()[0] == 2
    other.close()
