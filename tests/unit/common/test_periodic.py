"""Housekeeping timers: run at start and on every tick, survive a failing run, stop cleanly."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.common import metrics
from services.common.idempotency import IdempotencyStore
from services.common.periodic import PeriodicTask
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings


async def test_runs_once_at_start_without_waiting_for_the_interval() -> None:
    ran = asyncio.Event()
    task = PeriodicTask("at_start", 3600, ran.set)
    await task.start()
    await asyncio.wait_for(ran.wait(), timeout=30)  # an hour-long interval: only the start run
    await task.stop()
    assert task.runs == 1 and task.failures == 0


async def test_runs_every_interval_and_not_after_stop() -> None:
    # Events, not sleeps of a fixed length: the test cannot fail on a busy machine.
    interval = 0.05
    calls: list[float] = []
    three = asyncio.Event()

    def tick() -> None:
        calls.append(time.monotonic())
        if len(calls) >= 3:
            three.set()

    task = PeriodicTask("tick", interval, tick)
    await task.start()
    await asyncio.wait_for(three.wait(), timeout=30)
    await task.stop()
    stopped_at = len(calls)
    await asyncio.sleep(3 * interval)
    assert len(calls) == stopped_at, "a stopped task ran again"
    assert task.runs == stopped_at and task.failures == 0
    # Never faster than asked (the loop sleeps a whole interval after each run; the clock's
    # resolution is the only slack).
    gaps = [later - earlier for earlier, later in pairwise(calls)]
    assert all(gap >= interval - 0.005 for gap in gaps), gaps


async def test_a_failing_run_is_counted_and_the_next_tick_still_runs() -> None:
    outcomes = iter([RuntimeError("disk full"), None, None, None])
    recovered = asyncio.Event()

    def job() -> None:
        outcome = next(outcomes, None)
        if outcome is not None:
            raise outcome
        recovered.set()

    def counted(outcome: str) -> float:
        labels = {"service": metrics.service_name(), "task": "flaky", "outcome": outcome}
        return REGISTRY.get_sample_value("revops_housekeeping_runs_total", labels) or 0.0

    failed_before, ok_before = counted("failed"), counted("ok")
    task = PeriodicTask("flaky", 0.03, job)
    await task.start()
    await asyncio.wait_for(recovered.wait(), timeout=5)
    await task.stop()
    assert task.failures == 1 and task.runs >= 1
    # Counted for the RevopsHousekeepingFailing alert.
    assert counted("failed") == failed_before + 1
    assert counted("ok") == ok_before + task.runs


async def test_in_thread_jobs_run_off_the_event_loop() -> None:
    seen: list[int] = []
    task = PeriodicTask("threaded", 10, lambda: seen.append(threading.get_ident()), in_thread=True)
    await task.run_once()
    assert seen and seen[0] != threading.get_ident()


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        PeriodicTask("never", 0, lambda: None)


async def test_the_runtime_purges_idempotency_keys_older_than_the_retention(
    tmp_path: Path,
) -> None:
    store = IdempotencyStore(tmp_path / "keys.db")
    store.mark_processed("g", ["old"])
    with sqlite3.connect(tmp_path / "keys.db") as aged:  # age the first key
        aged.execute("UPDATE processed_keys SET processed_at = processed_at - 100")
    store.mark_processed("g", ["new"])
    settings = Settings(state_dir=tmp_path, idempotency_retention_s=50, signing_enabled=False)
    runtime = ServiceRuntime("svc", settings, idempotency=store)
    [purge] = [t for t in runtime.housekeeping if t.name == "purge_idempotency_keys"]
    await purge.run_once()
    assert purge.runs == 1
    assert store.already_processed("g", ["old", "new"]) == {"new"}
