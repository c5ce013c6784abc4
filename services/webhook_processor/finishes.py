"""A lane's final states, written together: the jobs a lane delivered (or failed) wait here,
for at most `FINISH_WINDOW_S` or until the lane is done with the jobs it claimed, then go to
the outbox in one statement (`DeliveryLog.finish_many`) instead of one each. Only once they
are written are their results published (and dead-lettered): a result never gets ahead of
the state that says the job is done.

A crash before the write loses the final states of the jobs sent in that window: they are
still pending in the outbox, so they are delivered again, with the same idempotency key
(the contract for a crash between a send and its final state, which the window widens from
one statement's time to at most `FINISH_WINDOW_S`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from contracts.actions import ActionJob
from services.webhook_processor.delivery_log import DeliveryLog, Finish

log = structlog.get_logger(__name__)

# How long a delivered job's final state may wait for others to be written with it.
FINISH_WINDOW_S = 0.1


@dataclass(frozen=True)
class Finished:
    """A job's final state and the jobs whose results it carries (one, or a digest's)."""

    final: Finish
    jobs: list[ActionJob]


class FinishBuffer:
    """One lane's final states not written yet. `flush` writes them and hands each to
    `written` (which publishes its results); a write that fails keeps them for the next."""

    def __init__(
        self,
        delivery_log: DeliveryLog,
        written: Callable[[Finished], Awaitable[None]],
        window_s: float,
    ) -> None:
        self._log = delivery_log
        self._written = written
        self._window_s = window_s
        self._waiting: list[Finished] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, finished: Finished) -> None:
        self._waiting.append(finished)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window_s, self._on_timer)

    async def flush(self) -> None:
        """Write every waiting final state (one statement), then publish their results.
        Raises what the write raised; the final states stay waiting then."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        done, self._waiting = self._waiting, []
        if not done:
            return
        try:
            self._log.finish_many([f.final for f in done])
        except BaseException:
            self._waiting[:0] = done
            raise
        for finished in done:
            await self._written(finished)

    async def drain(self) -> None:
        """Wait for the flushes the window started (stop)."""
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    def _on_timer(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._flush_in_background())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush_in_background(self) -> None:
        try:
            await self.flush()
        except Exception:  # kept: the lane writes them before its next claim
            log.exception("finish_write_failed", waiting=len(self._waiting))
