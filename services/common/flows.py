"""Clients' side of the pipeline: publish raw triggers, watch `revops.flow-results`, and
(optionally) the dead letters that end a flow, so a rejected request is seen by its sender.

Used by `revops trigger --wait`, `revops run/demo`, the HTTP ingress and the tests, so there
is one way to do both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from contracts import AgentName, FlowOutput, RawTrigger
from services.common.dlq import Rejection, rejections_in
from services.common.envelope_security import EnvelopeSecurity
from services.common.errors import HandlerError
from services.common.kafka_clients import group_less_consumer, start_or_close, stop_consumer
from services.common.kafka_security import aiokafka_options
from services.common.messages import decode_envelope, decode_payload
from services.common.records import Record
from services.common.settings import Settings

log = structlog.get_logger("flows")

# Triggers without an account (fleet scans, deal reviews) share this key, so one partition.
FLEET_KEY = "fleet"

FlowOutcome = FlowOutput | Rejection


def trigger_key(trigger: RawTrigger) -> str:
    return trigger.parameters.account_id or FLEET_KEY


async def publish_triggers(settings: Settings, triggers: Iterable[RawTrigger]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        linger_ms=5,
        **aiokafka_options(settings),
    )
    await start_or_close(producer, settings)
    try:
        futures = []
        for trigger in triggers:
            value = orjson.dumps(trigger.model_dump(mode="json", exclude_none=True))
            # The same correlation_id header the services write (their envelopes' id).
            headers = [("correlation_id", (trigger.request_id or "").encode())]
            futures.append(
                await producer.send(
                    settings.topics.triggers,
                    value,
                    key=trigger_key(trigger).encode(),
                    headers=headers if trigger.request_id else None,
                )
            )
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


async def flow_results_consumer(
    settings: Settings, also: Iterable[str] = ()
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started, group-less consumer assigned every partition of revops.flow-results, and
    of those topics of `also` that exist (e.g. DLQs not created yet are left out)."""
    topic = settings.topics.flow_results
    consumer = group_less_consumer(settings, "revops-flow-watcher")
    await start_or_close(consumer, settings)
    try:
        partitions = consumer.partitions_for_topic(topic)
        for _ in range(25):  # a topic created a moment ago may not be in the metadata yet
            if partitions:
                break
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await asyncio.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or {0})]
        for other in also:
            tps += [
                TopicPartition(other, p) for p in sorted(consumer.partitions_for_topic(other) or ())
            ]
        consumer.assign(tps)
    except BaseException:
        await stop_consumer(consumer)
        raise
    return consumer, tps


class FlowOutputReader:
    """A `revops.flow-results` record as a FlowOutput, for readers outside the agents (the
    CLI, the ingress, watchers). With signing on, the record must carry the execution agent's
    token (per record or per batch) for the audience `flow_output`: a forged or altered flow
    output is refused, so no one is shown a result the pipeline did not produce.
    """

    def __init__(self, settings: Settings) -> None:
        self._security = (
            EnvelopeSecurity.for_reader(AgentName.FLOW_OUTPUT.value, settings)
            if settings.signing_enabled
            else None
        )

    def read_many(
        self, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> list[FlowOutput | HandlerError]:
        """Per record, in order: its FlowOutput or why it was refused. The batch is verified
        at once (one signature check per batch root, one replay-cache pass)."""
        refusals: list[HandlerError | None] = [None] * len(records)
        if self._security is not None:
            refusals = list(self._security.verify_batch([_record(r) for r in records]))
        answers: list[FlowOutput | HandlerError] = []
        for record, refused in zip(records, refusals, strict=True):
            try:
                if refused is not None:
                    raise refused
                answers.append(decode_payload(decode_envelope(record.value), FlowOutput))
            except HandlerError as exc:
                answers.append(exc)
        return answers


def _record(record: ConsumerRecord[Any, Any]) -> Record:
    return Record(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        tuple(record.headers or ()),
        record.timestamp,
    )


class FlowWatcher:
    """Reads flow outputs published after `start()` (no consumer group: nothing committed).
    Records that fail verification or decoding are logged and skipped.

    `rejections`: also read the DLQs whose dead letter ends a flow, so a request that was
    rejected (unknown account, invalid trigger) ends with its `Rejection` instead of a wait.
    """

    def __init__(
        self, settings: Settings, from_beginning: bool = False, *, rejections: bool = False
    ) -> None:
        self._settings = settings
        self._from_beginning = from_beginning
        self._dlqs = set(settings.topics.flow_ending_dlqs()) if rejections else set()
        self._consumer: AIOKafkaConsumer | None = None
        self._reader = FlowOutputReader(settings)
        self.rejected = 0

    async def start(self) -> None:
        consumer, tps = await flow_results_consumer(self._settings, sorted(self._dlqs))
        if self._from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the lazy seek now, before any trigger is published
                await consumer.position(tp)
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await stop_consumer(self._consumer)

    async def poll(self, timeout_ms: int = 200) -> list[FlowOutput]:
        """Flow outputs that arrived (waits at most `timeout_ms` when there are none)."""
        return [o for o in await self.poll_outcomes(timeout_ms) if isinstance(o, FlowOutput)]

    async def poll_outcomes(self, timeout_ms: int = 200) -> list[FlowOutcome]:
        """Flow outputs and (with `rejections`) rejections that arrived."""
        assert self._consumer is not None, "start() first"
        batch = await self._consumer.getmany(timeout_ms=timeout_ms)
        flows: list[FlowOutcome] = []
        for tp, records in batch.items():
            if tp.topic in self._dlqs:
                flows += rejections_in(records)
                continue
            for record, answer in zip(records, self._reader.read_many(records), strict=True):
                if isinstance(answer, HandlerError):
                    self.rejected += 1
                    log.warning(
                        "flow_output_rejected",
                        code=answer.code,
                        reason=str(answer),
                        partition=record.partition,
                        offset=record.offset,
                    )
                else:
                    flows.append(answer)
        return flows

    async def outputs(self, timeout_s: float | None = None) -> AsyncIterator[FlowOutput]:
        async for outcome in self.outcomes(timeout_s):
            if isinstance(outcome, FlowOutput):
                yield outcome

    async def outcomes(self, timeout_s: float | None = None) -> AsyncIterator[FlowOutcome]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while deadline is None or time.monotonic() < deadline:
            for outcome in await self.poll_outcomes():
                yield outcome

    async def wait_for(
        self, request_ids: Iterable[str], timeout_s: float
    ) -> dict[str, FlowOutcome]:
        """The first outcome of each request id: its flow output or, with `rejections`, the
        dead letter that ended it (later ones are ignored)."""
        wanted = set(request_ids)
        found: dict[str, FlowOutcome] = {}
        async for outcome in self.outcomes(timeout_s):
            if outcome.request_id in wanted and outcome.request_id not in found:
                found[outcome.request_id] = outcome
                if len(found) == len(wanted):
                    break
        return found


@dataclass(frozen=True)
class PublishedTrigger:
    """Where and when a trigger with a given request id was found on the triggers topic."""

    partition: int
    offset: int
    timestamp_ms: int

    @property
    def published_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


async def find_published_trigger(
    settings: Settings, request_id: str, key: str, since: datetime, timeout_s: float = 30.0
) -> PublishedTrigger | None:
    """The first trigger named `request_id` published with `key` since `since`, if any.

    Only the partition the key maps to is read (the default partitioner of aiokafka, which
    the CLI, the ingress and the CronJobs use), from the offset at `since` to the end."""
    topic = settings.topics.triggers
    consumer = group_less_consumer(settings, "revops-trigger-lookup")
    await start_or_close(consumer, settings)
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = sorted(cluster.partitions_for_topic(topic) or ())
        if not partitions:
            return None
        tp = TopicPartition(topic, DefaultPartitioner()(key.encode(), partitions, partitions))
        consumer.assign([tp])
        start = (await consumer.offsets_for_times({tp: int(since.timestamp() * 1000)}))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if start is None or start.offset >= end:
            return None
        consumer.seek(tp, start.offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                if record.offset >= end:
                    return None
                if record.key == key.encode() and _names_request(record.value, request_id):
                    return PublishedTrigger(record.partition, record.offset, record.timestamp)
            if await consumer.position(tp) >= end:
                return None
        raise TimeoutError(f"could not read {topic} partition {tp.partition} in {timeout_s} s")
    finally:
        await stop_consumer(consumer)


def _names_request(value: bytes | None, request_id: str) -> bool:
    try:
        raw = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return False
    return isinstance(raw, dict) and raw.get("request_id") == request_id
