"""ResultBatcher: results submitted close together leave in one flush, bounded by count; a
result reaching an idle batcher leaves at once; each submitter learns whether its own flush
was published."""

from __future__ import annotations

import asyncio

import pytest

from services.webhook_processor.result_batches import ResultBatcher


class Flushes:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[list[int]] = []
        self.fail_first = fail_first

    async def __call__(self, items: list[int]) -> None:
        self.calls.append(items)
        if len(self.calls) <= self.fail_first:
            raise ConnectionError("broker unreachable")


async def test_submits_made_together_leave_in_one_flush() -> None:
    flushes = Flushes()
    batcher: ResultBatcher[int] = ResultBatcher(flushes, max_items=100, linger_s=0.001)
    await asyncio.gather(*(batcher.submit([n, n + 100]) for n in range(10)))
    assert flushes.calls == [[n + k for n in range(10) for k in (0, 100)]]


async def test_a_result_reaching_an_idle_batcher_is_published_without_waiting() -> None:
    flushes = Flushes()
    # linger_s=60: were the lone result held for company, the test would time out
    batcher: ResultBatcher[int] = ResultBatcher(flushes, max_items=100, linger_s=60)
    await asyncio.wait_for(batcher.submit([1]), timeout=10)
    assert flushes.calls == [[1]]


async def test_results_arriving_right_after_a_flush_wait_to_share_the_next_one() -> None:
    flushes = Flushes()
    batcher: ResultBatcher[int] = ResultBatcher(flushes, max_items=2, linger_s=60)
    await asyncio.wait_for(batcher.submit([1]), timeout=10)  # idle: at once
    # Busy now (a flush just ended): 2 waits for company, here until max_items is reached
    second = asyncio.ensure_future(batcher.submit([2]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert flushes.calls == [[1]]
    await asyncio.wait_for(asyncio.gather(second, batcher.submit([3])), timeout=10)
    assert flushes.calls == [[1], [2, 3]]


async def test_results_finishing_during_a_flush_leave_together_in_the_next() -> None:
    release = asyncio.Event()
    calls: list[list[int]] = []

    async def slow_flush(items: list[int]) -> None:
        calls.append(items)
        await release.wait()

    batcher: ResultBatcher[int] = ResultBatcher(slow_flush, max_items=100, linger_s=0.001)
    first = asyncio.ensure_future(batcher.submit([1]))
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls == [[1]]  # in flight
    later = [asyncio.ensure_future(batcher.submit([n])) for n in (2, 3)]
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), timeout=10)
    assert calls == [[1], [2, 3]]


async def test_a_flush_holds_at_most_max_items_of_whole_submissions() -> None:
    flushes = Flushes()
    batcher: ResultBatcher[int] = ResultBatcher(flushes, max_items=100, linger_s=60)
    # linger_s=60: only the count bound can start these flushes (the test would hang else)
    await asyncio.wait_for(
        asyncio.gather(
            batcher.submit([1] * 60), batcher.submit([2] * 60), batcher.submit([3] * 150)
        ),
        timeout=30,
    )
    assert [len(c) for c in flushes.calls] == [60, 60, 150]
    assert [c[0] for c in flushes.calls] == [1, 2, 3]


async def test_every_submitter_of_a_failed_flush_gets_its_error_and_can_submit_again() -> None:
    flushes = Flushes(fail_first=1)
    batcher: ResultBatcher[int] = ResultBatcher(flushes, linger_s=0.001)
    outcomes = await asyncio.gather(
        batcher.submit([1]), batcher.submit([2]), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [ConnectionError, ConnectionError]
    await batcher.submit([1, 2])
    assert flushes.calls == [[1, 2], [1, 2]]


async def test_nothing_to_submit_flushes_nothing() -> None:
    flushes = Flushes()
    batcher: ResultBatcher[int] = ResultBatcher(flushes)
    await batcher.submit([])
    assert flushes.calls == []


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items must be at least 1, got 0"):
        ResultBatcher(Flushes(), max_items=0)
