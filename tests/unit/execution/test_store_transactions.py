"""Store transactions nest as savepoints: one commit per service step, while a failed inner
step still undoes exactly its own writes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from services.common.stores.database import Database


def _scratch_table(store: Database) -> None:
    with store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS scratch (k TEXT PRIMARY KEY)")


def _keys(store: Database) -> list[str]:
    with store.reader() as conn:
        return [r[0] for r in conn.execute("SELECT k FROM scratch ORDER BY k")]


def test_a_failed_inner_step_undoes_only_its_own_writes(store: Database) -> None:
    _scratch_table(store)
    with store.transaction() as conn:
        conn.execute("INSERT INTO scratch VALUES ('outer')")
        with pytest.raises(RuntimeError), store.transaction() as inner:
            inner.execute("INSERT INTO scratch VALUES ('inner')")
            raise RuntimeError("step failed")
        with store.reader() as reader:  # reads the enclosing transaction's own writes
            assert [r[0] for r in reader.execute("SELECT k FROM scratch")] == ["outer"]
    assert _keys(store) == ["outer"]


def test_a_failure_after_inner_steps_undoes_everything(store: Database) -> None:
    _scratch_table(store)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        with store.transaction() as inner:
            inner.execute("INSERT INTO scratch VALUES ('inner')")
        conn.execute("INSERT INTO scratch VALUES ('outer')")
        raise RuntimeError("late failure")
    assert _keys(store) == []


def test_nested_steps_commit_once_and_other_connections_see_it_only_then(store: Database) -> None:
    _scratch_table(store)
    with store.transaction() as conn:
        with store.transaction() as inner:
            inner.execute("INSERT INTO scratch VALUES ('a')")
        assert _keys_seen_by_another_thread(store) == []
        conn.execute("INSERT INTO scratch VALUES ('b')")
    assert _keys_seen_by_another_thread(store) == ["a", "b"]


def _keys_seen_by_another_thread(store: Database) -> list[str]:
    """Another thread has a connection of its own (another session in PostgreSQL)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_keys, store).result()
