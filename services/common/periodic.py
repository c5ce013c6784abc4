"""Housekeeping that runs inside a service on a timer: purging old idempotency keys,
expiring insights. A failing run is logged, counted (`revops_housekeeping_runs_total`,
alert RevopsHousekeepingFailing) and retried at the next tick; it never stops the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from services.common import metrics

log = structlog.get_logger("periodic")


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task (if any) and wait until it has finished."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class PeriodicTask:
    """Runs `job` once at start, then every `interval_s` seconds until stopped.

    `in_thread`: run the job in a worker thread (it must then use its own connections,
    as the execution agent's thread-local store does); otherwise it runs on the event loop,
    which suits a short statement on a connection the loop already owns.
    """

    def __init__(
        self, name: str, interval_s: float, job: Callable[[], object], *, in_thread: bool = False
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"{name}: interval must be positive, got {interval_s}")
        self.name = name
        self.interval_s = interval_s
        self._job = job
        self._in_thread = in_thread
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        self.failures = 0

    async def start(self) -> None:
        if self._task is None:
            metrics.initialise_housekeeping(metrics.service_name(), self.name)
            self._task = asyncio.create_task(self._loop(), name=f"periodic:{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> None:
        try:
            result = await asyncio.to_thread(self._job) if self._in_thread else self._job()
        except Exception:
            self.failures += 1
            metrics.HOUSEKEEPING_RUNS.labels(metrics.service_name(), self.name, "failed").inc()
            log.exception("housekeeping_failed", task=self.name)
            return
        self.runs += 1
        metrics.HOUSEKEEPING_RUNS.labels(metrics.service_name(), self.name, "ok").inc()
        log.info("housekeeping_done", task=self.name, result=_summary(result))


def _summary(result: object) -> object:
    """Counts for log lines: a job may return a number, a collection, or nothing."""
    if isinstance(result, int | float | str) or result is None:
        return result
    try:
        return len(result)  # type: ignore[arg-type]
    except TypeError:
        return type(result).__name__
