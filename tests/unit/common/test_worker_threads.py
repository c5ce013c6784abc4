"""`WorkerThreads`: blocking work on the pool's named threads, or in the caller's thread
when the pool is inline (a hand-over costs more than short embedded work)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.common.worker_threads import WorkerThreads


def _thread_name() -> str:
    return threading.current_thread().name


async def _caller_run_and_in_thread(pool: WorkerThreads) -> tuple[str, str, str]:
    return _thread_name(), await pool.run(_thread_name), await pool.in_thread(_thread_name)


def test_an_inline_pool_runs_short_work_in_the_callers_thread() -> None:
    pool = WorkerThreads("inline-test", inline=True)
    caller, short, long = asyncio.run(_caller_run_and_in_thread(pool))
    assert short == caller
    assert long != caller and long.startswith("inline-test")


def test_a_threaded_pool_runs_all_work_on_its_thread() -> None:
    pool = WorkerThreads("threaded-test")
    caller, short, long = asyncio.run(_caller_run_and_in_thread(pool))
    assert short != caller and short.startswith("threaded-test")
    assert long == short  # one worker: the same thread (one copy of per-thread state)


def test_inline_work_raises_in_the_caller() -> None:
    def fail() -> None:
        raise ValueError("boom")

    async def call() -> None:
        await WorkerThreads("inline-test", inline=True).run(fail)

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(call())
