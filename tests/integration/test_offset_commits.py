"""Offsets committed per interval, not per batch (services/common/offset_commits.py), against
a real broker: nothing handled is committed before its interval, everything handled is
committed when the consumer stops or hands its partitions to another member, and a member
that takes partitions over re-reads none of what the first one handled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from tests.integration.test_runtime import make_runtime, parse_echo
from tests.integration.test_runtime_batches import committed_offsets, produce_keyed
from tests.kafka_tools import collect, create_topics, unique

pytestmark = pytest.mark.kafka

PARTITIONS = 4


async def echo_topics(kafka: str) -> tuple[str, str]:
    src, out = unique("oc.src"), unique("oc.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=PARTITIONS)
    return src, out


@asynccontextmanager
async def running_echo(
    kafka: str, state: Path, name: str, interval_ms: int
) -> AsyncIterator[tuple[ServiceRuntime, str, str, list[str]]]:
    """A started echo service on fresh topics: (runtime, source, output, ids handled)."""
    src, out = await echo_topics(kafka)
    handled: list[str] = []
    runtime = echo_runtime(kafka, state, name, src, out, handled, interval_ms)
    await runtime.start()
    try:
        yield runtime, src, out, handled
    finally:
        await runtime.stop()


def echo_runtime(
    kafka: str, state: Path, name: str, src: str, out: str, handled: list[str], interval_ms: int
) -> ServiceRuntime:
    runtime = make_runtime(kafka, state, name, kafka_commit_interval_ms=interval_ms)

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        handled.append(item.body.id)
        return [Outgoing(out, item.body.id, item.body)]

    runtime.subscribe(src, parse_echo, handle)
    return runtime


async def produce_one_by_one(kafka: str, topic: str, ids: list[str]) -> None:
    for i, rid in enumerate(ids):  # one at a time: the consumer sees many small batches
        await produce_keyed(kafka, topic, [(f"acct-{i % 8}", {"n": i, "id": rid})])


async def committed_total(kafka: str, group: str, topic: str) -> int:
    return sum(await committed_offsets(kafka, group, topic, PARTITIONS))


async def test_handled_offsets_wait_for_the_interval_and_are_committed_at_stop(kafka, tmp_path):
    ids = [f"r{i}" for i in range(12)]
    async with running_echo(kafka, tmp_path, "oc-stop", 600_000) as (runtime, src, out, handled):
        await produce_one_by_one(kafka, src, ids)
        assert len(await collect(kafka, out, 12)) == 12
        # Every output is acknowledged, and still nothing is committed: not per batch.
        assert await committed_total(kafka, runtime.group_id, src) == 0
    # Stopping committed everything the consumer handled.
    assert await committed_total(kafka, runtime.group_id, src) == 12
    assert sorted(handled) == sorted(ids)


async def test_pending_offsets_are_committed_within_the_interval_while_running(kafka, tmp_path):
    async with running_echo(kafka, tmp_path, "oc-timer", 200) as (runtime, src, out, _):
        await produce_one_by_one(kafka, src, [f"r{i}" for i in range(6)])
        assert len(await collect(kafka, out, 6)) == 6
        deadline = time.monotonic() + 30
        while await committed_total(kafka, runtime.group_id, src) < 6:
            assert time.monotonic() < deadline, "the interval's commit never came"
            await asyncio.sleep(0.1)


async def test_interval_zero_commits_after_every_batch(kafka, tmp_path):
    async with running_echo(kafka, tmp_path, "oc-zero", 0) as (runtime, src, out, _):
        for i in range(3):
            await produce_keyed(kafka, src, [("acct", {"n": i, "id": f"r{i}"})])
            assert len(await collect(kafka, out, i + 1)) == i + 1
            deadline = time.monotonic() + 30  # the commit follows the output's ack
            while await committed_total(kafka, runtime.group_id, src) < i + 1:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)


async def test_a_member_taking_partitions_over_rereads_nothing_already_handled(kafka, tmp_path):
    """Two replicas of one service with separate idempotency stores: had the first not
    committed before its partitions were revoked, the second would handle its records again
    (its store does not know their keys)."""
    src, out = await echo_topics(kafka)
    first_handled: list[str] = []
    second_handled: list[str] = []
    first = echo_runtime(kafka, tmp_path / "a", "oc-group", src, out, first_handled, 600_000)
    second = echo_runtime(kafka, tmp_path / "b", "oc-group", src, out, second_handled, 600_000)
    await first.start()
    try:
        before = [f"a{i}" for i in range(16)]
        await produce_one_by_one(kafka, src, before)
        assert len(await collect(kafka, out, 16)) == 16
        assert await committed_total(kafka, first.group_id, src) == 0
        await second.start()  # the group rebalances: the first revokes, commits, shares
        try:
            after = [f"b{i}" for i in range(16)]
            await produce_one_by_one(kafka, src, after)
            assert len(await collect(kafka, out, 32, settle_s=1.0)) == 32
            await asyncio.sleep(1.0)  # time for a wrongful re-read to show
        finally:
            await second.stop()
    finally:
        await first.stop()
    assert sorted(first_handled + second_handled) == sorted(before + after)
    assert not set(second_handled) & set(before)
    assert await committed_total(kafka, first.group_id, src) == 32
