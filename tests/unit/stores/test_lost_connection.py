"""A lost PostgreSQL: stores say so with one error type (StoreUnavailableError), the runtime
waits for the store with backoff (unready meanwhile) instead of dead-lettering or counting the
work as done, and everything resumes on the same objects once the server is back.

The server here is a throwaway one of this module (it gets stopped), not the session's."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from contracts import Subject
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime, Subscription
from services.common.settings import Settings
from services.common.stores import postgres
from services.common.stores.database import StoreUnavailableError
from services.common.stores.postgres import close_pools
from services.execution_agent.insights import InsightRepository
from services.execution_agent.store import open_store
from tests.postgres_server import LocalPostgres, _binaries
from tests.unit.execution.conftest import make_flag

_T = TypeVar("_T")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalPostgres]:
    bindir = _binaries()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL binaries (make tools installs Debian's postgresql)")
        pytest.skip("no PostgreSQL binaries to start a server this test may stop")
    server = LocalPostgres(bindir)
    try:
        yield server
    finally:
        close_pools()
        server.stop()


@pytest.fixture(autouse=True)
def quick_pool_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call gives up on a stopped server after 1 s, not 10 (the tests' pools are new)."""
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_S", 1.0)


def test_a_stopped_server_is_unavailable_then_resumes(
    server: LocalPostgres, tmp_path: Path
) -> None:
    insights = InsightRepository(open_store(tmp_path / "x.db", url=server.fresh_database()))
    first = insights.upsert_from_flag(Subject(account_id="ACC-1"), make_flag(), "req-1")
    server.stop_server()
    try:
        with pytest.raises(StoreUnavailableError, match="postgresql unavailable"):
            insights.upsert_from_flag(Subject(account_id="ACC-1"), make_flag(), "req-2")
        with pytest.raises(StoreUnavailableError):
            insights.get(first.insight_id)
    finally:
        server.start_again()
    # The same repository, once its pool has reconnected (the pool retries with backoff, as
    # the runtime does): nothing of the failed call was stored.
    again = _once_reachable(
        lambda: insights.upsert_from_flag(Subject(account_id="ACC-1"), make_flag(), "req-2")
    )
    assert again.insight_id == first.insight_id and again.version == 2
    assert [a.action for a in insights.audit(first.insight_id)] == ["create", "rerun"]


async def test_the_runtime_waits_for_the_store_unready_and_never_dead_letters(
    server: LocalPostgres, tmp_path: Path
) -> None:
    insights = InsightRepository(open_store(tmp_path / "x.db", url=server.fresh_database()))
    settings = Settings(
        state_dir=tmp_path, signing_enabled=False, retry_initial_delay_s=0.05, retry_jitter=0
    )
    runtime = ServiceRuntime("store_outage_test", settings)
    runtime._started = True  # as after start(): readiness then follows the store
    calls: list[str] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        calls.append(item.idempotency_key)
        insights.upsert_from_flag(Subject(account_id="ACC-2"), make_flag(), "req-outage")
        return []

    sub = Subscription(topic="t", parse=lambda r: item, handle=handle)
    item = Parsed(idempotency_key="k-1", body=None)
    record = Record("t", 0, 7, None, b"{}", (), 0)
    server.stop_server()
    restarted = threading.Event()
    readiness: list[bool] = []

    def restart_later() -> None:
        time.sleep(1.0)
        server.start_again()
        restarted.set()

    task = asyncio.create_task(runtime._handle_with_retries(sub, record, item))
    # More tries than a record gets before its dead letter: the outage does not count.
    await asyncio.wait_for(_until(lambda: len(calls) > settings.max_attempts), timeout=120)
    readiness.append(runtime._store_down)
    threading.Thread(target=restart_later, daemon=True).start()
    outputs, handled = await asyncio.wait_for(task, timeout=120)
    assert restarted.is_set()
    assert readiness == [True]  # unready while the store was out of reach
    assert handled and outputs == []  # done, not dead-lettered
    assert not runtime._store_down
    [insight] = insights.list(account_id="ACC-2")
    assert insight.request_id == "req-outage"


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 (a plain condition, nothing to wait on)
        await asyncio.sleep(0.05)


def _once_reachable(call: Callable[[], _T], timeout_s: float = 120.0) -> _T:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
