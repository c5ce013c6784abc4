"""The execution agent runs its store's batches on one thread with SQLite (a connection per
thread that touches the store, each with its caches, and SQLite takes one writer at a time
anyway): the event loop's own (`REVOPS_EMBEDDED_WORK_INLINE`, the default) or one store
thread; and on a pool with PostgreSQL, whose round trips overlap."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from services.common.records import BatchOutcome, Parsed, Record
from services.common.settings import Settings
from services.execution_agent import app as execution_app
from services.execution_agent.app import ExecutionApp, store_threads
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import ExecutionAgent
from services.execution_agent.store import open_store
from tests.unit.execution.test_batch_handler import ACCOUNTS, batch_of_decisions, batch_of_results


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "store-thread"])
def test_concurrent_batches_use_the_store_on_one_thread_with_sqlite(
    tmp_path: Path, routing: RoutingRules, monkeypatch: pytest.MonkeyPatch, inline: bool
) -> None:
    settings = Settings(var_dir=tmp_path / "var", database_url=None, embedded_work_inline=inline)
    agent = ExecutionAgent(open_store(tmp_path / "revops.db", url=""), routing)
    app = ExecutionApp(settings, agent)
    threads: list[str] = []
    for name in ("handle_decisions", "handle_action_results"):
        real = getattr(agent, name)

        def recording(batch: Any, real: Any = real) -> Any:
            threads.append(threading.current_thread().name)
            return real(batch)

        monkeypatch.setattr(agent, name, recording)
    items = batch_of_decisions()
    # one group per account, handed over at once as the runtime does with partitions
    groups = [[(p, r) for p, r in items if r.key == a.encode()] for a in ACCOUNTS]

    loop_threads: list[str] = []

    async def concurrently(
        handle: Any, groups: Sequence[Sequence[tuple[Parsed, Record]]]
    ) -> list[list[BatchOutcome]]:
        loop_threads.append(threading.current_thread().name)
        return list(await asyncio.gather(*(handle(group) for group in groups)))

    decided = [o for g in asyncio.run(concurrently(app.on_decisions, groups)) for o in g]
    assert all(isinstance(outcome, list) for outcome in decided)  # handled, none failed
    results = batch_of_results(decided)
    assert results
    asyncio.run(concurrently(app.on_action_results, [results[::2], results[1::2]]))
    assert len(threads) == len(groups) + 2
    assert len(set(threads)) == 1
    if inline:
        assert set(threads) == set(loop_threads)
    else:
        assert threads[0].startswith(execution_app.STORE_THREAD)


def test_postgresql_transactions_stay_off_the_event_loop(
    tmp_path: Path, routing: RoutingRules
) -> None:
    """A server's round trips would stall the loop (heartbeats, health checks): threads."""
    agent = ExecutionAgent(open_store(tmp_path / "revops.db", url=""), routing)
    assert ExecutionApp(Settings(database_url=None), agent)._store.inline
    postgresql = Settings(database_url="postgresql://revops@db/revops")
    assert not ExecutionApp(postgresql, agent)._store.inline
    assert not ExecutionApp(Settings(embedded_work_inline=False), agent)._store.inline


def test_postgresql_keeps_a_pool_of_store_threads() -> None:
    assert store_threads(Settings(database_url=None)) == 1
    assert store_threads(Settings(database_url="postgresql://revops@db/revops")) is None
