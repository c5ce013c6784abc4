"""`stop_consumer`: aiokafka's `stop()` raises the CancelledError of its own cancelled fetch
request when the broker is away (seen as a traceback when the ingress was stopped with
Ctrl-C after the broker went down); that one is absorbed, the caller's own cancellation is
not."""

from __future__ import annotations

import asyncio

import pytest

from services.common.kafka_clients import stop_consumer


class FetchCancelledOnStop:
    """Stands in for an aiokafka consumer whose fetcher awaits its cancelled request."""

    def __init__(self, stop_delay_s: float = 0.0) -> None:
        self.stop_delay_s = stop_delay_s
        self.stopped = False

    async def stop(self) -> None:
        await asyncio.sleep(self.stop_delay_s)
        self.stopped = True
        raise asyncio.CancelledError  # the fetch request's, not the caller's


async def test_the_consumers_own_cancelled_fetch_is_absorbed():
    consumer = FetchCancelledOnStop()
    await stop_consumer(consumer)
    assert consumer.stopped


async def test_the_callers_cancellation_still_propagates():
    consumer = FetchCancelledOnStop(stop_delay_s=5.0)
    task = asyncio.create_task(stop_consumer(consumer))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not consumer.stopped
