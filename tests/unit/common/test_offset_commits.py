"""`OffsetCommits` bookkeeping: which offsets a flush commits, keeps or drops. The commits
against a real broker (interval, stop, rebalance) are in
tests/integration/test_offset_commits.py; here the consumer is a stand-in whose commit can
be made to fail in the ways Kafka's does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from services.common.offset_commits import OffsetCommits

TOPIC = "t"


class StandInConsumer:
    def __init__(self, partitions: set[int]) -> None:
        self.held = {TopicPartition(TOPIC, p) for p in partitions}
        self.commits: list[dict[TopicPartition, int]] = []
        self.fail_with: Exception | None = None
        self.stopped = False

    def assignment(self) -> set[TopicPartition]:
        return set(self.held)

    async def commit(self, offsets: Any = None) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.commits.append(dict(offsets))

    async def stop(self) -> None:
        self.stopped = True


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


def tp(partition: int) -> TopicPartition:
    return TopicPartition(TOPIC, partition)


@pytest.fixture
def consumer() -> StandInConsumer:
    return StandInConsumer({0, 1})


@pytest.fixture
def commits(consumer: StandInConsumer) -> OffsetCommits:
    """Attached to `consumer`, with an interval no test waits for (flushes are explicit)."""
    attached = OffsetCommits(TOPIC, interval_s=3600)
    attached.attach(consumer)
    return attached


async def test_only_processed_offsets_are_committed_the_highest_per_partition(consumer, commits):
    commits.processed([record(0, 4), record(0, 2), record(1, 7)])
    await consumer.commit()  # FastStream's ack: deferred, nothing sent
    assert consumer.commits == []
    await commits.flush()
    assert consumer.commits == [{tp(0): 5, tp(1): 8}]
    await commits.flush()  # nothing new: no request
    assert len(consumer.commits) == 1
    await commits.close()


async def test_interval_zero_commits_at_the_ack(consumer):
    commits = OffsetCommits(TOPIC, interval_s=0)
    commits.attach(consumer)
    commits.processed([record(1, 0)])
    await consumer.commit()
    assert consumer.commits == [{tp(1): 1}]


async def test_the_interval_commits_without_another_ack(consumer):
    commits = OffsetCommits(TOPIC, interval_s=0.01)
    commits.attach(consumer)
    commits.processed([record(0, 0)])
    await consumer.commit()
    for _ in range(500):
        if consumer.commits:
            break
        await asyncio.sleep(0.01)
    assert consumer.commits == [{tp(0): 1}]


async def test_partitions_no_longer_held_are_dropped_not_committed(consumer, commits):
    commits.processed([record(0, 3), record(1, 3)])
    consumer.held = {tp(1)}
    await commits.flush()
    assert consumer.commits == [{tp(1): 4}]
    assert commits.pending == {}


async def test_a_refused_commit_is_dropped_an_unanswered_one_kept(consumer, commits):
    commits.processed([record(0, 3)])
    consumer.fail_with = KafkaConnectionError("broker away")
    await commits.flush()
    assert commits.pending == {tp(0): 4}  # tried again later
    consumer.fail_with = CommitFailedError("the group rebalanced")
    await commits.flush()
    assert commits.pending == {}  # the partition's new owner re-reads, skipping by key
    consumer.fail_with = None
    commits.processed([record(0, 9)])
    await commits.flush()
    assert consumer.commits == [{tp(0): 10}]


async def test_stop_commits_first_and_a_new_consumer_starts_clean(consumer, commits):
    commits.processed([record(0, 1)])
    await consumer.stop()
    assert consumer.stopped and consumer.commits == [{tp(0): 2}]
    replacement = StandInConsumer({0})
    commits.processed([record(0, 5)])  # handled by the old consumer, never committed by it
    commits.attach(replacement)
    assert commits.pending == {}
    await commits.flush()
    assert replacement.commits == []


async def test_revoking_partitions_commits_what_was_handled(consumer, commits):
    commits.processed([record(1, 2)])
    await commits.listener.on_partitions_revoked({tp(1)})
    assert consumer.commits == [{tp(1): 3}]
