"""Follows `revops.flow-results`, and the DLQs whose dead letters end a flow, into the
ingress index: a request's status becomes "complete" with its flow output, or "rejected"
with the dead letter's code and reason.

No consumer group: every ingress replica must see every flow output (a status request can
reach any replica), so each one reads all partitions itself and keeps its own position in its
index, resuming there after a restart (from the beginning the first time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts import FlowOutput
from services.common.dlq import rejections_in
from services.common.errors import HandlerError
from services.common.flows import FlowOutputReader
from services.common.kafka_clients import group_less_consumer, stop_consumer
from services.common.periodic import cancel_and_wait
from services.common.settings import Settings
from services.ingress.index import FlowIndex

log = structlog.get_logger("ingress.follower")

_PARTITION_REFRESH_S = 30.0


class FlowResultsFollower:
    def __init__(self, settings: Settings, index: FlowIndex) -> None:
        self._settings = settings
        self._topic = settings.topics.flow_results
        self._dlqs = settings.topics.flow_ending_dlqs()
        self._index = index
        self._reader = FlowOutputReader(settings)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._assigned: set[TopicPartition] = set()

    async def start(self) -> None:
        self._consumer = group_less_consumer(
            self._settings, "revops-ingress-flows", auto_offset_reset="earliest"
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="flow-results-follower")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self._consumer is not None:
            await stop_consumer(self._consumer)

    async def _run(self) -> None:
        assert self._consumer is not None
        loop = asyncio.get_running_loop()
        next_refresh = 0.0
        while True:
            try:
                if loop.time() >= next_refresh:
                    await self._assign_new_partitions()
                    next_refresh = loop.time() + (_PARTITION_REFRESH_S if self._assigned else 1.0)
                if not self._assigned:
                    await asyncio.sleep(0.2)
                    continue
                batch = await self._consumer.getmany(timeout_ms=200)
                for tp, records in batch.items():
                    self._store(records, tp)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("flow_results_read_failed")
                await asyncio.sleep(1.0)

    async def _assign_new_partitions(self) -> None:
        assert self._consumer is not None
        await self._consumer._client.force_metadata_update()
        # The flow-results topic first: until it exists nothing is assigned (DLQs alone
        # would make the follower look ready while no flow output can be read).
        if not self._consumer.partitions_for_topic(self._topic):
            return
        current = {
            TopicPartition(topic, p)
            for topic in (self._topic, *self._dlqs)
            for p in self._consumer.partitions_for_topic(topic) or ()
        }
        new = current - self._assigned
        if not new:
            return
        self._assigned = current
        self._consumer.assign(sorted(current))
        for topic in {tp.topic for tp in current}:
            stored = self._index.positions(topic)
            for tp in sorted(t for t in current if t.topic == topic):
                if tp.partition in stored:
                    self._consumer.seek(tp, stored[tp.partition])
                else:
                    await self._consumer.seek_to_beginning(tp)
        log.info("flow_results_assigned", partitions=[f"{t.topic}/{t.partition}" for t in new])

    def _store(self, records: Sequence[ConsumerRecord[Any, Any]], tp: TopicPartition) -> None:
        if not records:
            return
        after = {tp.partition: max(r.offset for r in records) + 1}
        if tp.topic != self._topic:
            self._index.record(tp.topic, [], after, rejections_in(records))
            return
        flows: list[FlowOutput] = []
        for record, answer in zip(records, self._reader.read_many(records), strict=True):
            if isinstance(answer, HandlerError):
                # Not ours to dead-letter (we are a reader, not the topic's consumer).
                log.warning(
                    "flow_result_rejected",
                    code=answer.code,
                    reason=str(answer),
                    partition=tp.partition,
                    offset=record.offset,
                )
            else:
                flows.append(answer)
        self._index.record(self._topic, flows, after)
