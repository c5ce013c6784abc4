"""Results finished close together leave in one publish call.

Every delivery ends with its ActionResult(s) on `revops.action-results`; one acks=all publish
per delivery costs more than the delivery itself on loopback. `ResultBatcher.submit` hands
its entries to the next flush and returns once that flush was published (or raises what the
flush raised), so a caller still knows its results were acknowledged before it marks them
published. While one flush is in flight the next one fills up. A flush starts at once when
`max_items` entries wait, or when the batcher was idle (its last flush ended `linger_s` or
more ago): a lone result at light load is not held back for company that is not coming
(the linger was ~3 of the ~10 ms an action took from consumed to result on an idle
pipeline). Otherwise, in a burst, it starts `linger_s` after the first waiting entry, so
results finishing close together share one publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_MAX_ITEMS = 200
DEFAULT_LINGER_S = 0.003


@dataclass
class _Waiting(Generic[T]):
    items: Sequence[T]
    done: asyncio.Future[None]


class ResultBatcher(Generic[T]):
    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        max_items: int = DEFAULT_MAX_ITEMS,
        linger_s: float = DEFAULT_LINGER_S,
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self._flush = flush
        self._max_items = max_items
        self._linger_s = linger_s
        self._waiting: deque[_Waiting[T]] = deque()
        self._count = 0
        self._full = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._last_flush_ended = -math.inf  # loop time

    async def submit(self, items: Sequence[T]) -> None:
        """Publish `items` with whatever else is waiting; return once they are published."""
        if not items:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(items, done))
        self._count += len(items)
        if self._count >= self._max_items:
            self._full.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="result-batcher")
        # Shielded: a caller cancelled while waiting leaves the others' flush alone.
        await asyncio.shield(done)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            busy = loop.time() - self._last_flush_ended < self._linger_s
            if busy and self._count < self._max_items:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._linger_s)
            batch = self._take()
            try:
                await self._flush([item for entry in batch for item in entry.items])
            except Exception as exc:
                for entry in batch:
                    if not entry.done.done():
                        entry.done.set_exception(exc)
            else:
                for entry in batch:
                    if not entry.done.done():
                        entry.done.set_result(None)
            finally:
                self._last_flush_ended = loop.time()

    def _take(self) -> list[_Waiting[T]]:
        """Whole submissions, oldest first, up to `max_items` items (at least one entry)."""
        taken: list[_Waiting[T]] = []
        size = 0
        while self._waiting and (
            not taken or size + len(self._waiting[0].items) <= self._max_items
        ):
            entry = self._waiting.popleft()
            taken.append(entry)
            size += len(entry.items)
        self._count -= size
        if self._count < self._max_items:
            self._full.clear()
        return taken
