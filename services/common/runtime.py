"""The service runtime every agent runs on: FastStream Kafka consumers with the reliability
contract of docs/reliability.md built in.

Per batch of records (one consumer group per service):
  1. verify the batch's signatures at once (one check per distinct batch root, one
     replay-cache transaction); a record that fails is dead-lettered alone;
  2. parse each record (a parse error is permanent: dead-letter it at once);
  3. skip records whose idempotency key this consumer already processed;
  4. handle the records, grouped by partition: the groups run concurrently (at most
     `partition_concurrency` at once), each in offset order, so one key's records (one
     account's) keep their order. A subscription's `handle_batch` takes a whole group in one
     call and answers per record; a record it failed, and every record it deferred, is then
     handled alone by `handle` with bounded retries (exponential backoff + jitter, in place:
     no seek loop); after the last attempt, or on a PermanentError, the seed's error
     envelope goes to `<topic>.dlq`;
  5. produce every output as soon as it exists, so the next stage starts early: signed per
     record (REVOPS_SIGNING_MODE=record), or per flush (`batch`, the default: a partition
     group's outputs when its handler returns, see `output_buffer`); then wait for all of
     Kafka's acknowledgements;
  6. mark the batch's idempotency keys as processed (SQLite, durable);
  7. return, and the batch's offsets are committed (AckPolicy.NACK_ON_ERROR: on an exception
     the batch is sought back and re-read, after a backoff pause, never in a hot loop); at
     most every `kafka_commit_interval_ms`, and before partitions are revoked or the
     consumer stops (offset_commits.py).
A crash anywhere before the commit makes Kafka redeliver the batch; outputs are
deterministic, so downstream sees the same idempotency keys again and skips them, and this
consumer skips the records whose keys step 6 stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from starlette.routing import Route

from contracts.envelope import AnyEnvelope, ErrorEnvelope
from services.common import metrics
from services.common.batch_size import AdaptiveBatchSize
from services.common.dlq import (
    HEADER_DLQ_CODE,
    HEADER_REQUEST_ID,
    build_error_envelope,
    request_id_in_value,
)
from services.common.envelope_security import EnvelopeSecurity
from services.common.errors import HandlerError
from services.common.health import HttpServer, build_app
from services.common.idempotency import IdempotencyStore
from services.common.kafka_security import faststream_security
from services.common.lag import ConsumerLagMonitor
from services.common.messages import encode
from services.common.offset_commits import OffsetCommits
from services.common.output_buffer import OutputBuffer
from services.common.periodic import PeriodicTask
from services.common.records import (
    BatchHandler,
    BatchOutcome,
    Outgoing,
    Parsed,
    ProducedMark,
    Record,
)
from services.common.retry import RetryPolicy
from services.common.security.batch_signing import BatchEntry
from services.common.settings import Settings, dlq_topic
from services.common.stores.database import StoreUnavailableError

_T = TypeVar("_T")

log = structlog.get_logger("runtime")

Parser = Callable[[Record], Parsed]
Handler = Callable[[Parsed, Record], Awaitable[list[Outgoing]]]


# Consecutive failed produces after which the service replaces its Kafka clients: after a
# broker restart an aiokafka producer can keep failing on stale partition leaders
# (LeaderNotAvailable, for as long as the process lives: aio-libs/aiokafka#1018) while a new
# producer works at once. Replacing them while the broker is really down is harmless: the
# service reconnects with backoff, as at start-up, and the batch is redelivered.
REPLACE_CLIENTS_AFTER_FAILURES = 5

# Encoded outputs a batch may leave unacknowledged before it waits for Kafka's acks.
MAX_UNACKED_BYTES = 2 * 2**20
_PARTITIONER = DefaultPartitioner()

Poll = Callable[[AIOKafkaConsumer], Coroutine[Any, Any, tuple[ConsumerRecord[Any, Any], ...]]]


@dataclass
class _InFlight:
    """Outputs handed to the producer whose acknowledgements are still to be awaited."""

    outputs: list[Outgoing] = dataclasses.field(default_factory=list)
    acks: list[Awaitable[Any]] = dataclasses.field(default_factory=list)
    bytes: int = 0

    def add(self, out: Outgoing, ack: Awaitable[Any], size: int) -> None:
        self.outputs.append(out)
        self.acks.append(ack)
        self.bytes += size

    def take(self) -> tuple[list[Outgoing], list[Awaitable[Any]]]:
        taken = (self.outputs, self.acks)
        self.outputs, self.acks, self.bytes = [], [], 0
        return taken


@dataclass
class Subscription:
    topic: str
    parse: Parser
    handle: Handler
    handle_batch: BatchHandler | None = None
    #: Most records one poll hands over (the adaptive cap grows up to it).
    max_records: int = 0


@dataclass
class _Item:
    """A verified, parsed record of the batch, not processed before."""

    record: Record
    parsed: Parsed
    started: float  # perf_counter when its batch began, for the processing-time metric


def _safe_records(records: Sequence[ConsumerRecord[Any, Any]]) -> tuple[Any, ...]:
    """FastStream decodes header values as UTF-8 and would fail the whole batch on one
    binary header; replace undecodable bytes so such a record reaches our parser (and the
    DLQ) instead of wedging the partition."""
    safe = []
    for rec in records:
        headers = rec.headers or ()
        if all(_is_utf8(v) for _, v in headers):
            safe.append(rec)
        else:
            fixed = tuple((k, v.decode("utf-8", "replace").encode()) for k, v in headers)
            safe.append(dataclasses.replace(rec, headers=fixed))
    return tuple(safe)


def _is_utf8(value: bytes | None) -> bool:
    try:
        (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        http_port: int | None = None,
        idempotency: IdempotencyStore | None = None,
        extra_routes: list[Route] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.group_id = f"{settings.consumer_group_prefix}.{name}"
        metrics.configure(name)
        self.policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            initial_delay_s=settings.retry_initial_delay_s,
            max_delay_s=settings.retry_max_delay_s,
            jitter=settings.retry_jitter,
        )
        self.idempotency = idempotency or IdempotencyStore(
            settings.resolved_state_dir / f"idempotency-{name}.db", settings.database_url
        )
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=f"revops-{name}",
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.kafka_linger_ms,
            logger=None,
            security=faststream_security(settings),
            # No dependency injection around the handlers: resolving `Context("message")`
            # ran a sync provider in anyio's thread pool for every consumed batch (a thread
            # hop and a task group per batch). `on_batch` reads the message from the
            # context instead.
            apply_types=False,
        )
        self.security = EnvelopeSecurity(name, settings) if settings.signing_enabled else None
        self._http_port = http_port
        self._extra_routes = extra_routes or []
        self._http: HttpServer | None = None
        self._started = False
        self._store_down = False  # the operational store was out of reach at the last call
        self._infra_failures = 0
        self._replacing_clients: asyncio.Task[None] | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self._lag: ConsumerLagMonitor | None = None
        self._commits: list[OffsetCommits] = []  # one per subscription
        # Components with a lifecycle of their own (delivery workers, warehouse connections).
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self.on_stop: list[Callable[[], Awaitable[None]]] = []
        self.housekeeping: list[PeriodicTask] = []
        self.every(
            "purge_idempotency_keys",
            lambda: self.idempotency.purge_older_than(settings.idempotency_retention_s),
        )

    # -- wiring ---------------------------------------------------------------------------
    def every(
        self,
        name: str,
        job: Callable[[], object],
        *,
        in_thread: bool = False,
        interval_s: float | None = None,
    ) -> None:
        """Run `job` at start and then every `interval_s` (default
        `housekeeping_interval_s`) while serving."""
        interval = self.settings.housekeeping_interval_s if interval_s is None else interval_s
        self.housekeeping.append(PeriodicTask(name, interval, job, in_thread=in_thread))

    def subscribe(
        self,
        topic: str,
        parse: Parser,
        handle: Handler,
        *,
        handle_batch: BatchHandler | None = None,
        max_records: int | None = None,
    ) -> None:
        """Consume `topic`. `handle` takes one record; `handle_batch`, if given, takes a
        partition's records at once and answers per record (records.BatchHandler: outputs,
        or an exception for a record it rolled back or deferred, which `handle` then takes).
        `max_records` caps a consumed batch below the setting's (a stage whose outputs are
        large holds a whole batch's outputs in memory until they are acknowledged).
        """
        largest = min(
            max_records or self.settings.batch_max_records, self.settings.batch_max_records
        )
        sub = Subscription(topic, parse, handle, handle_batch, largest)
        self.subscriptions[topic] = sub
        metrics.initialise_consumer(self.name, topic, dlq_topic(topic))
        batch_size = AdaptiveBatchSize(self.settings.batch_min_records, largest)
        commits = OffsetCommits(topic, self.settings.kafka_commit_interval_ms / 1000)
        self._commits.append(commits)

        async def on_batch(body: Any) -> None:
            raw = self.broker.context.get_local("message").raw_message
            records = raw if isinstance(raw, tuple) else (raw,)
            await self._process_batch(sub, raw)
            commits.processed(records)
            subscriber.max_records = batch_size.after_poll(len(records))  # read at every poll

        subscriber = self.broker.subscriber(
            topic,
            group_id=self.group_id,
            batch=True,
            max_records=batch_size.current,
            batch_timeout_ms=self.settings.kafka_poll_wait_ms,
            fetch_min_bytes=self.settings.kafka_fetch_min_bytes,
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            max_poll_interval_ms=10 * 60 * 1000,
            parser=self._parser,
            decoder=self._decoder,
            listener=commits.listener,
        )
        subscriber.get_msg = poll_without_idle_sleep(subscriber, commits)  # type: ignore[method-assign,assignment]
        subscriber(on_batch)

    @staticmethod
    async def _parser(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
        records = msg if isinstance(msg, tuple) else (msg,)
        return await original(_safe_records(records))

    @staticmethod
    async def _decoder(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
        return None  # we read raw records; nothing to decode

    # -- processing -----------------------------------------------------------------------
    async def _process_batch(
        self, sub: Subscription, raw: Sequence[ConsumerRecord[Any, Any]]
    ) -> None:
        started = time.perf_counter()
        records = [
            Record(
                r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp
            )
            for r in (raw if isinstance(raw, tuple) else (raw,))
        ]
        sent = _InFlight()
        out = OutputBuffer(
            lambda pairs: self._send_or_pause(sent, pairs),
            batched=self.security is not None and self.security.batch_signing,
            max_bytes=MAX_UNACKED_BYTES,
            max_delay_s=self.settings.output_linger_ms / 1000,
        )
        try:
            finished_keys = await self._handle_records(sub, records, out, started)
            await out.close()
        except BaseException:
            await out.discard()
            raise
        await self._acks_or_pause(sent)
        await self._until_stored(
            lambda: self.idempotency.mark_processed(self.group_id, finished_keys)
        )

    async def _handle_records(
        self, sub: Subscription, records: list[Record], out: OutputBuffer, started: float
    ) -> list[str]:
        """Steps 1-4 of the batch; the idempotency keys of the records handled."""
        for topic, count in Counter(record.topic for record in records).items():
            metrics.MESSAGES_CONSUMED.labels(self.name, topic).inc(count)
            metrics.BATCH_RECORDS.labels(self.name, topic).observe(count)
        security = self.security
        refusals: Sequence[HandlerError | None] = [None] * len(records)
        if security is not None:
            refusals = await self._until_stored(lambda: security.verify_batch(records))
        items: list[_Item] = []
        for record, refused in zip(records, refusals, strict=True):
            try:
                if refused is not None:
                    raise refused
                items.append(_Item(record, sub.parse(record), started))
            except HandlerError as exc:
                await out.add([self._dead_letter(record, exc, attempts=1, item=None)])

        keys = [item.parsed.idempotency_key for item in items]
        done = await self._until_stored(
            lambda: self.idempotency.already_processed(self.group_id, keys)
        )
        fresh: dict[int, list[_Item]] = {}  # partition -> its new records, in offset order
        for item in items:
            if item.parsed.idempotency_key in done:
                metrics.MESSAGES_DUPLICATE.labels(self.name, item.record.topic).inc()
                # Counted, logged at debug: a redelivery storm after a crash would otherwise
                # flood the logs with one line per record already handled.
                log.debug(
                    "duplicate_skipped",
                    idempotency_key=item.parsed.idempotency_key,
                    **item.parsed.log_context,
                )
                continue
            done.add(item.parsed.idempotency_key)
            fresh.setdefault(item.record.partition, []).append(item)

        groups = list(fresh.values())
        if len(groups) == 1:  # one partition (a light load's batch): no task to run it in
            return await self._handle_partition(sub, groups[0], out)
        bound = asyncio.Semaphore(self.settings.partition_concurrency)

        async def one_partition(group: list[_Item]) -> list[str]:
            async with bound:
                return await self._handle_partition(sub, group, out)

        # Every group runs to its end before a failure is raised: no handler is left running
        # while the batch is sought back and read again.
        results = await asyncio.gather(
            *(one_partition(group) for group in groups), return_exceptions=True
        )
        finished: list[str] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            finished += result
        return finished

    async def _handle_partition(
        self, sub: Subscription, items: list[_Item], out: OutputBuffer
    ) -> list[str]:
        """One partition's records in offset order; the idempotency keys of those handled
        (a dead-lettered record had no effect: its key stays unmarked so that a DLQ replay,
        same key, is processed, while a second success would be skipped)."""
        outcomes: Sequence[BatchOutcome | None] = [None] * len(items)
        if sub.handle_batch is not None:
            outcomes = await self._call_batch_handler(sub.handle_batch, items)
        finished: list[str] = []
        last = len(items) - 1
        for index, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
            if isinstance(outcome, list):
                produced, handled = outcome, True
            else:  # no batch handler, a record it failed or deferred: handled alone
                with structlog.contextvars.bound_contextvars(**item.parsed.log_context):
                    produced, handled = await self._handle_with_retries(
                        sub, item.record, item.parsed
                    )
            # Released at once (acknowledged at the end of the batch): the next stage starts
            # on this record while this one handles the rest of the batch.
            await out.add(produced, more_coming=index < last)
            if handled:
                finished.append(item.parsed.idempotency_key)
            metrics.PROCESSING_SECONDS.labels(self.name, item.record.topic).observe(
                time.perf_counter() - item.started
            )
        # The group is done: its outputs leave now, not when the batch's last group is.
        await out.flush()
        return finished

    async def _call_batch_handler(
        self, handle_batch: BatchHandler, items: list[_Item]
    ) -> Sequence[BatchOutcome | None]:
        """The batch handler's answer per record; None for every record when the call as a
        whole failed (each is then handled alone). A store outage is waited out and the same
        records offered again (the handler committed nothing)."""
        pairs = [(item.parsed, item.record) for item in items]
        outage = 0
        while True:
            try:
                outcomes = await handle_batch(pairs)
                self._store_down = False
            except StoreUnavailableError as exc:
                await self._wait_for_store(exc, outage)
                outage += 1
                continue
            except Exception as exc:
                log.warning("batch_handler_failed", records=len(items), error=str(exc)[:500])
                return [None] * len(items)
            if len(outcomes) != len(items):
                log.error(
                    "batch_handler_answer_mismatch", records=len(items), answers=len(outcomes)
                )
                return [None] * len(items)
            return outcomes

    async def _handle_with_retries(
        self, sub: Subscription, record: Record, item: Parsed
    ) -> tuple[list[Outgoing], bool]:
        """The outputs, and whether the handler succeeded (False: dead-lettered)."""
        attempt = outage = 0
        while True:
            attempt += 1
            try:
                outputs = await sub.handle(item, record), True
                self._store_down = False
                return outputs
            except StoreUnavailableError as exc:
                # Not the record's fault: wait for the store as long as it takes (unready
                # meanwhile); the offset stays uncommitted, the attempt does not count.
                attempt -= 1
                await self._wait_for_store(exc, outage)
                outage += 1
            except Exception as exc:
                code = exc.code if isinstance(exc, HandlerError) else type(exc).__name__
                metrics.MESSAGES_FAILED.labels(self.name, record.topic, code).inc()
                permanent = isinstance(exc, HandlerError) and not exc.retryable
                if permanent or attempt >= self.policy.max_attempts:
                    return [self._dead_letter(record, exc, attempts=attempt, item=item)], False
                delay = self.policy.delay(attempt - 1)
                metrics.RETRIES.labels(self.name, record.topic).inc()
                log.info("retrying", code=code, attempt=attempt, delay_s=round(delay, 3))
                await asyncio.sleep(delay)

    async def _until_stored(self, step: Callable[[], _T]) -> _T:
        """`step` (a store call), retried with backoff while the store is out of reach."""
        outage = 0
        while True:
            try:
                result = step()
            except StoreUnavailableError as exc:
                await self._wait_for_store(exc, outage)
                outage += 1
                continue
            self._store_down = False
            return result

    async def _wait_for_store(self, exc: StoreUnavailableError, outage: int) -> None:
        self._store_down = True
        delay = self.policy.delay(min(outage, 10))
        metrics.STORE_UNAVAILABLE.labels(self.name).inc()
        log.warning("store_unavailable", error=str(exc), retry_in_s=round(delay, 3))
        await asyncio.sleep(delay)

    def _dead_letter(
        self, record: Record, exc: BaseException, *, attempts: int, item: Parsed | None
    ) -> Outgoing:
        """The record's error envelope for `<topic>.dlq`, counted and logged (every dead
        letter, also one refused at parsing or authentication, gets one warning line)."""
        error_envelope = build_error_envelope(
            record,
            exc,
            attempts=attempts,
            service=self.name,
            consumer_group=self.group_id,
            policy=self.policy,
            envelope=item.envelope if item else None,
        )
        code = error_envelope.error.code
        # A record that failed before it was parsed may still name its request (a trigger
        # with a bad field): its sender is told through this id.
        request_id = (item.log_context.get("request_id") if item else None) or (
            request_id_in_value(record.value)
        )
        self._note_dead_letter(error_envelope, request_id, error=str(exc))
        headers = {HEADER_DLQ_CODE: code}
        if request_id:
            headers[HEADER_REQUEST_ID] = request_id
        return Outgoing(
            topic=dlq_topic(record.topic),
            key=record.key.decode("utf-8", "replace") if record.key else None,
            message=error_envelope,
            headers=headers,
        )

    def _note_dead_letter(
        self, envelope: ErrorEnvelope, request_id: str | None, *, error: str
    ) -> None:
        """Count and log one dead letter (revops_messages_dead_lettered_total, alert
        RevopsDeadLetterQueueReceiving; one `dead_lettered` warning line each)."""
        dead = envelope.dead_letter
        metrics.MESSAGES_DEAD_LETTERED.labels(
            self.name, dead.original_topic, envelope.error.code
        ).inc()
        log.warning(
            "dead_lettered",
            code=envelope.error.code,
            topic=dead.original_topic,
            partition=dead.original_partition,
            offset=dead.original_offset,
            request_id=request_id,
            attempts=dead.attempts,
            error=error[:500],
        )

    async def _send_or_pause(
        self, sent: _InFlight, outputs: Sequence[tuple[Outgoing, bytes]]
    ) -> None:
        await self._or_pause(self._send(sent, outputs))
        if sent.bytes > MAX_UNACKED_BYTES:  # bound what a large batch keeps in memory
            await self._acks_or_pause(sent)

    async def _acks_or_pause(self, sent: _InFlight) -> None:
        await self._or_pause(self._await_acks(sent))

    async def _or_pause(self, step: Awaitable[None]) -> None:
        try:
            await self._counting_produce_failures(step)
        except Exception:
            # Kafka is unreachable: back off before the batch is sought back and re-read.
            delay = self.policy.delay(min(self._infra_failures - 1, 6))
            log.exception("produce_failed", retry_in_s=round(delay, 3))
            await asyncio.sleep(delay)
            raise

    async def _counting_produce_failures(self, step: Awaitable[None]) -> None:
        """Run a produce step; count consecutive failures, replacing the Kafka clients
        every REPLACE_CLIENTS_AFTER_FAILURES of them."""
        try:
            await step
        except Exception:
            self._infra_failures += 1
            if self._infra_failures % REPLACE_CLIENTS_AFTER_FAILURES == 0:
                self._replace_clients()
            raise
        self._infra_failures = 0

    def _replace_clients(self) -> None:
        """Reconnect with new Kafka clients, in a task of its own: stopping the broker
        cancels the consumer task this is called from (its batch is uncommitted, so Kafka
        redelivers it to the new consumer)."""
        if self._replacing_clients is not None and not self._replacing_clients.done():
            return

        async def replace() -> None:
            metrics.KAFKA_CLIENTS_REPLACED.labels(self.name).inc()
            log.warning("kafka_clients_replaced", failures=self._infra_failures)
            await self._stop_broker()
            await self._start_broker()

        self._replacing_clients = asyncio.create_task(replace())

    async def publish(self, outputs: Sequence[Outgoing]) -> None:
        """Produce in order and wait for every acknowledgement. A dead letter a component
        writes itself (a delivery the webhook processor gave up on, after its record was
        committed) is counted and logged like the runtime's own."""
        sent = _InFlight()
        await self._counting_produce_failures(
            self._send(sent, [(out, encode(out.message)) for out in outputs])
        )
        await self._counting_produce_failures(self._await_acks(sent))
        for out in outputs:
            if isinstance(out.message, ErrorEnvelope):
                meta = out.message.metadata
                self._note_dead_letter(
                    out.message, meta.request_id if meta else None, error=out.message.error.message
                )

    async def _send(self, sent: _InFlight, outputs: Sequence[tuple[Outgoing, bytes]]) -> None:
        """Sign the outputs (dead letters stay unsigned) and hand each to the producer, in
        order, without waiting for its ack."""
        headers = [{"content-type": "application/json", **out.headers} for out, _ in outputs]
        partitions: list[int | None] = [None] * len(outputs)
        producer = self._kafka_producer()
        security = self.security
        if security is not None:
            signed = [
                (i, audience)
                for i, (out, _) in enumerate(outputs)
                if not out.topic.endswith(".dlq") and (audience := security.audience_of(out))
            ]
            if security.batch_signing:
                entries = []
                topic_partitions: dict[str, list[int]] = {}  # looked up once per flush
                for i, audience in signed:
                    out, value = outputs[i]
                    key = out.key.encode() if out.key else None
                    if out.topic not in topic_partitions:
                        topic_partitions[out.topic] = await self._partitions_of(out.topic)
                    # The leaf commits to the partition: choose it as the producer would.
                    partition = partition_for(key, topic_partitions[out.topic])
                    partitions[i] = partition
                    entries.append(
                        BatchEntry(audience, out.topic, partition, key, value, headers[i])
                    )
                for (i, _), extra in zip(signed, security.sign_batch(entries), strict=True):
                    headers[i].update(extra)
            else:
                for i, _ in signed:
                    headers[i].update(security.sign(*outputs[i]))
        for (out, value), record_headers, chosen in zip(outputs, headers, partitions, strict=True):
            # Straight to aiokafka: FastStream's publish path (a command object, middlewares,
            # codec) cost more per record than the send itself. Same headers as it wrote.
            ack = await producer.send(
                out.topic,
                value,
                key=out.key.encode() if out.key else None,
                partition=chosen,
                headers=wire_headers(record_headers, correlation_id_of(out)),
            )
            sent.add(out, ack, len(value))

    async def _partitions_of(self, topic: str) -> list[int]:
        """The topic's partitions in the producer's metadata (waiting for it if need be)."""
        return sorted(await self._kafka_producer().partitions_for(topic))

    def _kafka_producer(self) -> AIOKafkaProducer:
        # FastStream keeps its aiokafka producer behind a state object (faststream 0.7).
        producer: AIOKafkaProducer = self.broker.config.producer._producer.producer  # type: ignore[attr-defined]
        return producer

    async def _await_acks(self, sent: _InFlight) -> None:
        outputs, acks = sent.take()
        if acks:
            await send_lingering_now(self._kafka_producer())
            await asyncio.gather(*acks)
        for topic, count in Counter(out.topic for out in outputs).items():
            metrics.MESSAGES_PRODUCED.labels(self.name, topic).inc(count)
        marks: dict[Callable[[list[Any]], None], list[Any]] = {}
        for out in outputs:
            done = out.on_produced
            if isinstance(done, ProducedMark):
                marks.setdefault(done.mark, []).append(done.item)
            elif done is not None:
                done()
        for mark, items in marks.items():
            mark(items)

    # -- lifecycle ------------------------------------------------------------------------
    async def ready(self) -> bool:
        if not self._started or self._store_down:
            return False
        try:
            return bool(await self.broker.ping(timeout=2.0))
        except Exception:
            return False

    async def start(self) -> None:
        metrics.configure(self.name)
        if self._http_port is not None:
            self._http = HttpServer(
                build_app(self.name, self.ready, self._extra_routes),
                self.settings.metrics_host,
                self._http_port,
            )
            await self._http.start()
        await self._start_broker()
        if self.subscriptions:
            self._lag = ConsumerLagMonitor(
                self.name, self.group_id, list(self.subscriptions), self.settings
            )
            await self._lag.start()
        for hook in self.on_start:
            await hook()
        for task in self.housekeeping:
            await task.start()
        self._started = True
        log.info("service_started", group_id=self.group_id, http_port=self.http_port)

    async def _start_broker(self) -> None:
        """Connect, waiting (with backoff) while Kafka is unreachable: a service restarted
        during a broker outage must come up when the broker does, not exit. Meanwhile
        /healthz answers and /readyz says not ready."""
        failures = 0
        while True:
            try:
                await self.broker.start()
                return
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await self.broker.stop()  # drop the half-made connection before retrying
                delay = self.policy.delay(min(failures, 6))
                failures += 1
                log.warning("broker_unreachable", retry_in_s=round(delay, 3), error=str(exc))
                await asyncio.sleep(delay)

    async def _stop_broker(self) -> None:
        """Close the Kafka clients, bounded: while Kafka is down the producer would wait
        forever to flush records nobody will acknowledge (a POST answered 503, a batch that
        is redelivered anyway since its offsets were not committed)."""
        try:
            await asyncio.wait_for(self.broker.stop(), self.settings.stop_timeout_s)
        except TimeoutError:
            log.warning("kafka_close_timed_out", timeout_s=self.settings.stop_timeout_s)

    @property
    def http_port(self) -> int | None:
        return self._http.port if self._http else None

    async def stop(self) -> None:
        self._started = False
        if self._replacing_clients is not None:
            self._replacing_clients.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replacing_clients
        for task in self.housekeeping:
            await task.stop()
        for hook in self.on_stop:  # before the broker: hooks may still publish
            await hook()
        if self._lag is not None:
            await self._lag.stop()
        await self._stop_broker()  # each consumer commits what it handled before it stops
        for commits in self._commits:
            await commits.close()
        if self._http:
            await self._http.stop()
        self.idempotency.close()
        log.info("service_stopped")


def poll_without_idle_sleep(subscriber: Any, commits: OffsetCommits | None = None) -> Poll:
    """A FastStream batch subscriber's poll without the sleep it takes after an empty poll.

    aiokafka's `getmany` returns as soon as a fetch brings records, so the poll can wait
    long (`batch_timeout_ms`) at no cost in latency; FastStream then sleeps as long again
    when nothing came, and a record arriving during that sleep waited for it, which forced
    polls of a few ms and ~100 wake-ups a second per idle consumer. Here the loop goes
    straight back to `getmany`; the cap (`max_records`) is read at every poll. `commits`
    takes over the consumer's offset commits (offset_commits.py) at its first poll."""

    async def get_msg(consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[Any, Any], ...]:
        if commits is not None:
            commits.attach(consumer)
        fetched = await consumer.getmany(
            timeout_ms=subscriber.batch_timeout_ms, max_records=subscriber.max_records
        )
        return tuple(chain.from_iterable(fetched.values()))

    return get_msg


def partition_for(key: bytes | None, partitions: list[int]) -> int:
    """The partition aiokafka's default partitioner (murmur2 of the key, as Kafka's Java
    client) picks for `key` among `partitions` (all of the topic's, sorted)."""
    return int(_PARTITIONER(key, partitions, partitions))


async def send_lingering_now(producer: AIOKafkaProducer) -> None:
    """Have the producer send the records it holds back for its linger now, and wait for
    their acknowledgements.

    The linger (`kafka_linger_ms`) lets records handed over within a millisecond of each
    other share a produce request: the partition groups of a consumed batch flush one after
    the other. Once a caller waits for its acks nothing more of its own is coming, and the
    linger only delays them: one wait per hop, 4-6 ms of a single flow's ~25 on an idle
    pipeline (docs/batch-pipeline.md, "Eighteenth round", with what it costs in a short
    burst). aiokafka has no public call for this: `flush_for_commit` is its own "close the
    lingering batches and wake the sender" step before a transaction commits (aiokafka is
    pinned; a test fails if it stops doing that). It waits for every batch in the producer,
    not only the caller's: those are being sent now too."""
    await producer._message_accumulator.flush_for_commit()


def wire_headers(headers: dict[str, str], correlation_id: str | None) -> list[tuple[str, bytes]]:
    """Kafka headers as FastStream's publish wrote them: `content-type` first, then
    `correlation_id` (a random one when the record names none), then the others."""
    rest = [(name, value.encode()) for name, value in headers.items() if name != "content-type"]
    return [
        ("content-type", headers.get("content-type", "").encode()),
        ("correlation_id", (correlation_id or str(uuid.uuid4())).encode()),
        *rest,
    ]


def correlation_id_of(out: Outgoing) -> str | None:
    """The Kafka `correlation_id` header of a record: the envelope's correlation id, so a
    foreign client sees the same id in the header as in `metadata.correlation_id`; for a
    raw trigger or a dead letter without an envelope, its request id."""
    message = out.message
    if isinstance(message, AnyEnvelope | ErrorEnvelope) and message.metadata is not None:
        return message.metadata.correlation_id
    request_id = out.headers.get(HEADER_REQUEST_ID) or getattr(message, "request_id", None)
    return request_id if isinstance(request_id, str) else None
