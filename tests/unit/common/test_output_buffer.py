"""OutputBuffer: when a batch's outputs are released to the producer (flush points), in which
order, and what happens when a timed flush fails."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from pydantic import BaseModel

from services.common.output_buffer import OutputBuffer
from services.common.records import Outgoing


class Item(BaseModel):
    n: int


def outputs(*numbers: int) -> list[Outgoing]:
    return [Outgoing("t", f"k{n % 3}", Item(n=n)) for n in numbers]


class Recorder:
    """A `send` that records each flush (the numbers it carried)."""

    def __init__(self, fail: bool = False) -> None:
        self.flushes: list[list[int]] = []
        self.sent = asyncio.Event()
        self.fail = fail

    async def __call__(self, pairs: Sequence[tuple[Outgoing, bytes]]) -> None:
        await asyncio.sleep(0)  # a real send yields to the loop
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.flushes.append([out.message.n for out, _ in pairs])  # type: ignore[attr-defined]
        self.sent.set()


async def test_per_record_mode_sends_each_output_at_once() -> None:
    send = Recorder()
    buffer = OutputBuffer(send, batched=False)
    await buffer.add(outputs(1, 2))
    await buffer.add(outputs(3))
    assert send.flushes == [[1, 2], [3]]
    await buffer.close()
    assert send.flushes == [[1, 2], [3]]


async def test_batch_mode_flushes_every_max_records_and_the_rest_at_close() -> None:
    send = Recorder()
    buffer = OutputBuffer(send, batched=True, max_records=100, max_delay_s=3600)
    for n in range(250):
        await buffer.add(outputs(n))
    assert send.flushes == [list(range(100)), list(range(100, 200))]
    await buffer.close()
    assert send.flushes[2] == list(range(200, 250))


async def test_batch_mode_flushes_when_the_pending_bytes_reach_the_bound() -> None:
    send = Recorder()
    size = len(Item(n=1).model_dump_json())
    buffer = OutputBuffer(send, batched=True, max_bytes=3 * size, max_delay_s=3600)
    await buffer.add(outputs(1, 2))
    assert send.flushes == []
    await buffer.add(outputs(3))
    assert send.flushes == [[1, 2, 3]]
    await buffer.close()


async def test_batch_mode_flushes_after_the_delay_without_more_outputs() -> None:
    """Low load: a lone output goes out after `max_delay_s`, not at the end of the batch."""
    send = Recorder()
    buffer = OutputBuffer(send, batched=True, max_delay_s=0.01)
    await buffer.add(outputs(1))
    await asyncio.wait_for(send.sent.wait(), timeout=10)
    assert send.flushes == [[1]]
    await buffer.add(outputs(2))  # a new timer for the next output
    send.sent.clear()
    await asyncio.wait_for(send.sent.wait(), timeout=10)
    assert send.flushes == [[1], [2]]
    await buffer.close()
    assert send.flushes == [[1], [2]]


async def test_outputs_the_caller_flushes_next_arm_no_timer() -> None:
    """A partition group's last record: the runtime flushes right after adding its outputs,
    so no linger timer is armed for them (it would only be cancelled again)."""
    send = Recorder()
    buffer = OutputBuffer(send, batched=True, max_delay_s=0.001)
    await buffer.add(outputs(1), more_coming=False)
    await asyncio.sleep(0.05)  # fifty times the delay: a timer would have sent them
    assert send.flushes == []
    await buffer.flush()
    assert send.flushes == [[1]]
    send.sent.clear()
    await buffer.add(outputs(2))  # more to come: the timer is armed as before
    await asyncio.wait_for(send.sent.wait(), timeout=10)
    assert send.flushes == [[1], [2]]
    await buffer.close()


async def test_close_sends_what_the_timer_had_not_sent_yet_once() -> None:
    send = Recorder()
    buffer = OutputBuffer(send, batched=True, max_delay_s=3600)
    await buffer.add(outputs(1, 2))
    await buffer.close()
    assert send.flushes == [[1, 2]]


async def test_concurrent_adders_keep_each_adders_order() -> None:
    send = Recorder()
    buffer = OutputBuffer(send, batched=True, max_records=7, max_delay_s=0.001)

    async def adder(start: int) -> None:
        for n in range(start, start + 50):
            await buffer.add(outputs(n))
            await asyncio.sleep(0)

    await asyncio.gather(adder(0), adder(1000))
    await buffer.close()
    sent = [n for flush in send.flushes for n in flush]
    assert sorted(sent) == [*range(50), *range(1000, 1050)]
    assert [n for n in sent if n < 1000] == list(range(50))
    assert [n for n in sent if n >= 1000] == list(range(1000, 1050))


async def test_a_failed_timed_flush_fails_the_batch_at_close() -> None:
    send = Recorder(fail=True)
    buffer = OutputBuffer(send, batched=True, max_delay_s=0.001)
    await buffer.add(outputs(1))
    with pytest.raises(ConnectionError):
        for _ in range(1000):  # until the timer has run and failed
            await asyncio.sleep(0.001)
            await buffer.add([])
        await buffer.close()


async def test_discard_stops_the_timer_and_drops_what_is_pending() -> None:
    send = Recorder()
    buffer = OutputBuffer(send, batched=True, max_delay_s=3600)
    await buffer.add(outputs(1))
    await buffer.discard()
    await buffer.close()
    assert send.flushes == []


async def test_flush_sends_what_is_pending_at_once_and_the_buffer_keeps_working() -> None:
    """A partition group's handler returned: its outputs leave without waiting for the
    linger, and later outputs are buffered (and flushed at close) as before."""
    send = Recorder()
    buffer = OutputBuffer(send, batched=True, max_delay_s=3600)
    await buffer.add(outputs(1, 2))
    assert send.flushes == []
    await buffer.flush()
    assert send.flushes == [[1, 2]]
    await buffer.flush()  # nothing pending: nothing sent
    await buffer.add(outputs(3))
    assert send.flushes == [[1, 2]]
    await buffer.close()
    assert send.flushes == [[1, 2], [3]]
