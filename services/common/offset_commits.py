"""A consumer's offsets committed at most every `interval_s`, not after every batch.

Why: at light load every stage consumes batches of one record, and FastStream committed the
offsets after each batch: one OffsetCommit request per batch, ~0.3-0.5 ms of the broker's CPU
and ~0.2 ms of the client's, ~6 commits per flow (docs/batch-pipeline.md, tenth round).
Committing later loses nothing and duplicates no effect: a batch's idempotency keys are
stored, durably, before its commit is even requested (runtime step 6), so whatever a crash
redelivers is skipped by key. The contract's order is kept: only offsets of batches whose
outputs Kafka acknowledged are ever committed.

Pending offsets are committed before the consumer gives up partitions (a rebalance: the
listener's `on_partitions_revoked`) and before it stops, so a scale-out or a rolling restart
redelivers nothing. `interval_s` 0 commits after every batch, as FastStream did.

How it plugs in: FastStream's ack calls the consumer's `commit()` without arguments, which
would commit every consumed position. `attach` replaces that method on the consumer object
with `commit_soon`, and its `stop` with one that commits first; `processed` records what a
batch handled, and only that is ever committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError

log = structlog.get_logger()

#: A commit that takes longer than this (Kafka unreachable) gives up; its offsets stay
#: pending for the next attempt.
COMMIT_TIMEOUT_S = 10.0


class OffsetCommits:
    """The offsets one subscription's consumer handled and has not committed yet."""

    def __init__(self, topic: str, interval_s: float) -> None:
        self.topic = topic
        self.interval_s = interval_s
        self.consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._commit_now: Callable[[dict[TopicPartition, int]], Awaitable[None]] | None = None
        self.listener = _CommitBeforeRevoke(self)

    def attach(self, consumer: AIOKafkaConsumer) -> None:
        """Take over `consumer`'s argument-less commit and its stop (once per consumer: the
        runtime makes new ones when it replaces its Kafka clients)."""
        if consumer is self.consumer:
            return
        self.consumer = consumer
        self._pending.clear()  # a new consumer starts from the group's committed offsets
        commit_now, stop = consumer.commit, consumer.stop

        async def commit(offsets: Any = None) -> None:
            if offsets is None:  # FastStream's ack
                await self.commit_soon()
            else:
                await commit_now(offsets)

        async def stop_after_commit() -> None:
            await self.flush(consumer)
            await stop()

        self._commit_now = commit_now
        consumer.commit = commit
        consumer.stop = stop_after_commit

    def processed(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """A batch's outputs are acknowledged and its keys stored: its offsets may go."""
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if record.offset + 1 > self._pending.get(tp, -1):
                self._pending[tp] = record.offset + 1

    async def commit_soon(self) -> None:
        """What an acknowledged batch calls: commit now (interval 0), or within the interval."""
        if self.interval_s <= 0:
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.interval_s)
        await self.flush()

    @property
    def pending(self) -> dict[TopicPartition, int]:
        return dict(self._pending)

    async def flush(self, consumer: AIOKafkaConsumer | None = None) -> None:
        """Commit the pending offsets of partitions the consumer still holds. A commit the
        group refused (the partitions moved on) is dropped: their new owner re-reads those
        records and skips them by key. One Kafka did not answer stays pending."""
        consumer = consumer or self.consumer
        async with self._lock:
            if consumer is None or consumer is not self.consumer or not self._pending:
                return
            held = self.consumer.assignment()
            offsets = {tp: o for tp, o in self._pending.items() if tp in held}
            for tp in list(self._pending):
                if tp not in held:
                    del self._pending[tp]
            if not offsets:
                return
            assert self._commit_now is not None  # set with the consumer
            try:
                await asyncio.wait_for(self._commit_now(offsets), COMMIT_TIMEOUT_S)
            except (CommitFailedError, IllegalStateError) as exc:
                log.info("offset_commit_dropped", topic=self.topic, reason=str(exc))
            except Exception as exc:  # Kafka away: keep them for the next attempt
                log.warning("offset_commit_failed", topic=self.topic, error=repr(exc))
                return
            for tp, offset in offsets.items():
                if self._pending.get(tp) == offset:
                    del self._pending[tp]

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer


class _CommitBeforeRevoke(ConsumerRebalanceListener):
    """Commits what was handled before a rebalance hands partitions to another member."""

    def __init__(self, commits: OffsetCommits) -> None:
        self.commits = commits

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.commits.flush()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None
