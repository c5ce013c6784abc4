"""The outputs of one consumed batch on their way to Kafka, released at flush points.

With per-record signatures every output is handed to the producer as soon as it exists, so
the next stage starts early. A batch signature needs its records first, so with batch
signing the outputs wait for a flush point and are signed together right before they are
sent (one root per audience):
  - the caller's `flush`: the runtime flushes when a partition group's handler is done, so
    a group's outputs leave as soon as they exist, not at the end of the consumed batch,
  - `max_records` outputs pending (a large group streams out in slices),
  - `max_bytes` of encoded outputs pending (bounds what a batch holds in memory),
  - `max_delay_s` after the first pending output (a linger of a few ms: records handled
    one by one that finish close together share a signature),
  - the end of the consumed batch (`close`).
Flushes run one at a time and in the order outputs were added, so the outputs of one key
(one partition) keep their order whichever partition group adds them. Sending is not
acknowledging: the runtime awaits every ack before it commits the batch's offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from services.common.messages import encode
from services.common.records import Outgoing

# Hands (output, encoded value) pairs to the producer, in order, signed.
Send = Callable[[Sequence[tuple[Outgoing, bytes]]], Awaitable[None]]


class OutputBuffer:
    def __init__(
        self,
        send: Send,
        *,
        batched: bool,
        max_records: int = 100,
        max_bytes: int = 2 * 2**20,
        max_delay_s: float = 0.003,
    ) -> None:
        self._send = send
        self._batched = batched
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._max_delay_s = max_delay_s
        self._pending: list[tuple[Outgoing, bytes]] = []
        self._pending_bytes = 0
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._timer_sleeping = False
        self._failed: BaseException | None = None

    async def add(self, outputs: Sequence[Outgoing], *, more_coming: bool = True) -> None:
        """`more_coming=False`: the caller flushes next (a partition group's last record),
        so no linger timer is armed for these outputs."""
        self._raise_if_failed()
        if not outputs:
            return
        encoded = [(out, encode(out.message)) for out in outputs]
        if not self._batched:
            async with self._lock:
                await self._send(encoded)
            return
        self._pending += encoded
        self._pending_bytes += sum(len(value) for _, value in encoded)
        if len(self._pending) >= self._max_records or self._pending_bytes >= self._max_bytes:
            await self._flush()
        elif self._timer is None and more_coming:
            self._arm_timer()

    async def flush(self) -> None:
        """Send what is pending now (e.g. a partition group's handler returned)."""
        await self._stop_timer()
        self._raise_if_failed()
        await self._flush()

    async def close(self) -> None:
        """Send what is still pending (the end of the consumed batch)."""
        await self.flush()

    async def discard(self) -> None:
        """Stop the timer of a batch that failed (its records will be read again)."""
        with contextlib.suppress(BaseException):
            await self._stop_timer()
        self._pending, self._pending_bytes = [], 0

    async def _flush(self) -> None:
        async with self._lock:
            taken, self._pending, self._pending_bytes = self._pending, [], 0
            if taken:
                await self._send(taken)

    def _arm_timer(self) -> None:
        self._timer_sleeping = True  # until it wakes up, cancelling it loses nothing
        self._timer = asyncio.create_task(self._flush_later(), name="output-flush-timer")

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._max_delay_s)
        self._timer_sleeping = False
        # Past this point the timer is not cancelled (a flush half-sent would be lost from
        # view); `close` waits for it instead.
        try:
            await self._flush()
        except Exception as exc:  # Kafka unreachable: the batch fails at its next step
            self._failed = exc
        self._timer = None
        if self._pending and self._failed is None:  # added while this flush was sending
            self._arm_timer()

    async def _stop_timer(self) -> None:
        while (timer := self._timer) is not None:
            if self._timer_sleeping:
                timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
            if self._timer is timer:  # cancelled while sleeping: it did not clear itself
                self._timer = None

    def _raise_if_failed(self) -> None:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed
