"""Follows `revops.flow-results` into the ingress index.

No consumer group: every ingress replica must see every flow output (a status request can
reach any replica), so each one reads all partitions itself and keeps its own position in its
index, resuming there after a restart (from the beginning the first time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts import FlowOutput
from services.common.errors import HandlerError
from services.common.flows import FlowOutputReader
from services.common.kafka_security import aiokafka_options
from services.common.settings import Settings
from services.ingress.index import FlowIndex

log = structlog.get_logger("ingress.follower")

_PARTITION_REFRESH_S = 30.0


class FlowResultsFollower:
    def __init__(self, settings: Settings, index: FlowIndex) -> None:
        self._settings = settings
        self._topic = settings.topics.flow_results
        self._index = index
        self._reader = FlowOutputReader(settings)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._assigned: set[int] = set()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            client_id="revops-ingress-flows",
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
            **aiokafka_options(self._settings),
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="flow-results-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

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
                    self._store(records, tp.partition)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("flow_results_read_failed")
                await asyncio.sleep(1.0)

    async def _assign_new_partitions(self) -> None:
        assert self._consumer is not None
        await self._consumer._client.force_metadata_update()
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        if not partitions - self._assigned:
            return
        self._assigned = set(partitions)
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        stored = self._index.positions(self._topic)
        for tp in tps:
            if tp.partition in stored:
                self._consumer.seek(tp, stored[tp.partition])
            else:
                await self._consumer.seek_to_beginning(tp)
        log.info("flow_results_assigned", topic=self._topic, partitions=sorted(partitions))

    def _store(self, records: Sequence[ConsumerRecord[Any, Any]], partition: int) -> None:
        flows: list[FlowOutput] = []
        last = -1
        for record in records:
            last = max(last, record.offset)
            try:
                flows.append(self._reader.read(record))
            except HandlerError as exc:
                # Not ours to dead-letter (we are a reader, not the topic's consumer).
                log.warning(
                    "flow_result_rejected",
                    code=exc.code,
                    reason=str(exc),
                    partition=partition,
                    offset=record.offset,
                )
        if last >= 0:
            self._index.record(self._topic, flows, {partition: last + 1})
