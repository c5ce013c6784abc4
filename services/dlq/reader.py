"""Reading dead letters from Kafka: every `*.dlq` topic (or the ones asked for), from the
beginning to the end offsets seen at the start, with no consumer group (nothing committed,
so reading never changes what the next reader sees)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka_clients import group_less_consumer, start_or_close, stop_consumer
from services.common.kafka_security import aiokafka_options
from services.common.settings import Settings
from services.dlq.messages import DLQ_SUFFIX, DeadLetter, as_dlq_topic, parse_dlq_id


class DeadLetterNotFoundError(LookupError):
    pass


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return group_less_consumer(settings, "revops-dlq-tool", auto_offset_reset="earliest")


def _dead_letter(record: ConsumerRecord[Any, Any]) -> DeadLetter:
    return DeadLetter.from_record(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp,
        record.key,
        record.value,
        record.headers or (),
    )


async def dlq_partitions(settings: Settings, topics: Iterable[str] | None) -> list[TopicPartition]:
    """The partitions of the DLQ topics asked for (default: every `*.dlq` topic) that exist."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **aiokafka_options(settings)
    )
    await start_or_close(admin, settings)
    try:
        existing = set(await admin.list_topics())
        wanted = (
            {as_dlq_topic(t) for t in topics}
            if topics
            else {t for t in existing if t.endswith(DLQ_SUFFIX)}
        )
        described = await admin.describe_topics(sorted(wanted & existing)) if wanted else []
    finally:
        await admin.close()
    return [
        TopicPartition(info["topic"], part["partition"])
        for info in described
        for part in sorted(info["partitions"], key=lambda p: p["partition"])
    ]


async def read_dead_letters(
    settings: Settings, topics: Iterable[str] | None = None, timeout_s: float = 60.0
) -> list[DeadLetter]:
    """Every dead letter of `topics` (DLQ or original topic names; default: all `*.dlq`)."""
    tps = await dlq_partitions(settings, topics)
    if not tps:
        return []
    consumer = _consumer(settings)
    await start_or_close(consumer, settings)
    try:
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        start = {tp: await consumer.position(tp) for tp in tps}
        # Progress is tracked by the offsets actually seen, not by the consumer's position:
        # under load a fetch issued before the seek can move the position past records that
        # were never returned; such a gap is read again instead of silently skipped.
        next_offset = dict(start)
        pending = {tp for tp in tps if next_offset[tp] < end[tp]}
        found: dict[tuple[TopicPartition, int], DeadLetter] = {}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    if next_offset[tp] <= r.offset < end[tp]:
                        found[(tp, r.offset)] = _dead_letter(r)
                        next_offset[tp] = r.offset + 1
            for tp in list(pending):
                if next_offset[tp] >= end[tp]:
                    pending.discard(tp)
                elif await consumer.position(tp) > next_offset[tp]:
                    consumer.seek(tp, next_offset[tp])
        if pending:
            raise TimeoutError(f"could not read {len(pending)} DLQ partition(s) in {timeout_s} s")
        return [found[k] for k in sorted(found, key=lambda k: (k[0].topic, k[0].partition, k[1]))]
    finally:
        await stop_consumer(consumer)


async def read_dead_letter(
    settings: Settings, message_id: str, timeout_s: float = 10.0
) -> DeadLetter:
    topic, partition, offset = parse_dlq_id(message_id)
    consumer = _consumer(settings)
    await start_or_close(consumer, settings)
    try:
        tp = TopicPartition(topic, partition)
        if tp not in await dlq_partitions(settings, [topic]):
            raise DeadLetterNotFoundError(f"no partition {partition} of topic {topic!r}")
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        if offset >= end:
            raise DeadLetterNotFoundError(f"{message_id}: offset beyond the end ({end})")
        consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                if record.offset == offset:
                    return _dead_letter(record)
                if record.offset > offset:  # deleted by retention or compaction
                    raise DeadLetterNotFoundError(f"{message_id} no longer exists")
            await asyncio.sleep(0)
        raise DeadLetterNotFoundError(f"{message_id} could not be read in {timeout_s} s")
    finally:
        await stop_consumer(consumer)
