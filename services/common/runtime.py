"""The service runtime every agent runs on: FastStream Kafka consumers with the reliability
contract of docs/reliability.md built in.

Per batch of records (one consumer group per service):
  1. parse each record (a parse error is permanent: dead-letter it at once);
  2. skip records whose idempotency key this consumer already processed;
  3. run the handler with bounded retries (exponential backoff + jitter, in place: no seek
     loop); after the last attempt, or on a PermanentError, build the seed's error envelope
     and route it to `<topic>.dlq`;
  4. produce every output of the batch (each record's as soon as it is handled, so the next
     stage starts early) and wait for all of Kafka's acknowledgements;
  5. mark the batch's idempotency keys as processed (SQLite, durable);
  6. return, and FastStream commits the offsets (AckPolicy.NACK_ON_ERROR: on an exception the
     batch is sought back and re-read, after a backoff pause, never in a hot loop).
A crash anywhere before step 6 makes Kafka redeliver the batch; outputs are deterministic,
so downstream sees the same idempotency keys again and skips them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from starlette.routing import Route

from contracts import Envelope, ErrorEnvelope
from services.common import metrics
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
from services.common.periodic import PeriodicTask
from services.common.records import Outgoing, Parsed, Record
from services.common.retry import RetryPolicy
from services.common.settings import Settings, dlq_topic
from services.common.stores.database import StoreUnavailableError

_T = TypeVar("_T")

log = structlog.get_logger("runtime")

Parser = Callable[[Record], Parsed]
Handler = Callable[[Parsed, Record], Awaitable[list[Outgoing]]]


# Encoded outputs a batch may leave unacknowledged before it waits for Kafka's acks.
MAX_UNACKED_BYTES = 2 * 2**20


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
            linger_ms=1,
            logger=None,
            security=faststream_security(settings),
        )
        self.security = EnvelopeSecurity(name, settings) if settings.signing_enabled else None
        self._http_port = http_port
        self._extra_routes = extra_routes or []
        self._http: HttpServer | None = None
        self._started = False
        self._store_down = False  # the operational store was out of reach at the last call
        self._infra_failures = 0
        self._subscribed: list[str] = []
        self._lag: ConsumerLagMonitor | None = None
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

    def subscribe(self, topic: str, parse: Parser, handle: Handler) -> None:
        sub = Subscription(topic, parse, handle)
        self._subscribed.append(topic)
        metrics.initialise_consumer(self.name, topic, dlq_topic(topic))

        async def on_batch(body: Any, message: Any = Context("message")) -> None:  # noqa: B008
            await self._process_batch(sub, message.raw_message)

        self.broker.subscriber(
            topic,
            group_id=self.group_id,
            batch=True,
            max_records=self.settings.batch_max_records,
            batch_timeout_ms=50,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            max_poll_interval_ms=10 * 60 * 1000,
            parser=self._parser,
            decoder=self._decoder,
        )(on_batch)

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
        records = [
            Record(
                r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp
            )
            for r in (raw if isinstance(raw, tuple) else (raw,))
        ]
        sent = _InFlight()
        parsed: list[tuple[Record, Parsed, float]] = []
        for record in records:
            started = time.perf_counter()
            metrics.MESSAGES_CONSUMED.labels(self.name, record.topic).inc()
            try:
                if self.security is not None:
                    self.security.verify(record)
                parsed.append((record, sub.parse(record), started))
            except HandlerError as exc:
                dead = self._dead_letter(record, exc, attempts=1, item=None)
                await self._send_or_pause(sent, [dead])

        keys = [p.idempotency_key for _, p, _ in parsed]
        done = await self._until_stored(
            lambda: self.idempotency.already_processed(self.group_id, keys)
        )
        finished_keys: list[str] = []
        for record, item, started in parsed:
            if item.idempotency_key in done:
                metrics.MESSAGES_DUPLICATE.labels(self.name, record.topic).inc()
                # Counted, logged at debug: a redelivery storm after a crash would otherwise
                # flood the logs with one line per record already handled.
                log.debug(
                    "duplicate_skipped", idempotency_key=item.idempotency_key, **item.log_context
                )
                continue
            done.add(item.idempotency_key)
            with structlog.contextvars.bound_contextvars(**item.log_context):
                produced, handled = await self._handle_with_retries(sub, record, item)
            # Sent at once (acknowledged below): the next stage starts on this record while
            # this one handles the rest of the batch, and the batch's outputs are held as
            # encoded bytes in the producer, not as models until the end of the batch.
            await self._send_or_pause(sent, produced)
            # A dead-lettered record had no effect: its key stays unmarked so that a DLQ
            # replay (same key) is processed, while a second success would be skipped.
            if handled:
                finished_keys.append(item.idempotency_key)
            metrics.PROCESSING_SECONDS.labels(self.name, record.topic).observe(
                time.perf_counter() - started
            )

        await self._acks_or_pause(sent)
        await self._until_stored(
            lambda: self.idempotency.mark_processed(self.group_id, finished_keys)
        )

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

    async def _send_or_pause(self, sent: _InFlight, outputs: Sequence[Outgoing]) -> None:
        await self._or_pause(self._send(sent, outputs))
        if sent.bytes > MAX_UNACKED_BYTES:  # bound what a large batch keeps in memory
            await self._acks_or_pause(sent)

    async def _acks_or_pause(self, sent: _InFlight) -> None:
        await self._or_pause(self._await_acks(sent))

    async def _or_pause(self, step: Awaitable[None]) -> None:
        try:
            await step
            self._infra_failures = 0
        except Exception:
            # Kafka is unreachable: back off before the batch is sought back and re-read.
            delay = self.policy.delay(min(self._infra_failures, 6))
            self._infra_failures += 1
            log.exception("produce_failed", retry_in_s=round(delay, 3))
            await asyncio.sleep(delay)
            raise

    async def publish(self, outputs: Sequence[Outgoing]) -> None:
        """Produce in order and wait for every acknowledgement. A dead letter a component
        writes itself (a delivery the webhook processor gave up on, after its record was
        committed) is counted and logged like the runtime's own."""
        sent = _InFlight()
        await self._send(sent, outputs)
        await self._await_acks(sent)
        for out in outputs:
            if isinstance(out.message, ErrorEnvelope):
                meta = out.message.metadata
                self._note_dead_letter(
                    out.message, meta.request_id if meta else None, error=out.message.error.message
                )

    async def _send(self, sent: _InFlight, outputs: Sequence[Outgoing]) -> None:
        """Hand each output to the producer, in order, without waiting for its ack."""
        for out in outputs:
            value = encode(out.message)
            headers = {"content-type": "application/json", **out.headers}
            if self.security is not None and not out.topic.endswith(".dlq"):
                headers.update(self.security.sign(out, value))
            ack = await self.broker.publish(
                value,
                out.topic,
                key=out.key.encode() if out.key else None,
                headers=headers,
                correlation_id=correlation_id_of(out),
                no_confirm=True,
            )
            sent.add(out, ack, len(value))

    async def _await_acks(self, sent: _InFlight) -> None:
        outputs, acks = sent.take()
        if acks:
            await asyncio.gather(*acks)
        for out in outputs:
            metrics.MESSAGES_PRODUCED.labels(self.name, out.topic).inc()
            if out.on_produced is not None:
                out.on_produced()

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
        if self._subscribed:
            self._lag = ConsumerLagMonitor(
                self.name, self.group_id, self._subscribed, self.settings
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
        for task in self.housekeeping:
            await task.stop()
        for hook in self.on_stop:  # before the broker: hooks may still publish
            await hook()
        if self._lag is not None:
            await self._lag.stop()
        await self._stop_broker()
        if self._http:
            await self._http.stop()
        self.idempotency.close()
        log.info("service_stopped")


def correlation_id_of(out: Outgoing) -> str | None:
    """The Kafka `correlation_id` header of a record: the envelope's correlation id, so a
    foreign client sees the same id in the header as in `metadata.correlation_id`; for a
    raw trigger or a dead letter without an envelope, its request id."""
    message = out.message
    if isinstance(message, Envelope | ErrorEnvelope) and message.metadata is not None:
        return message.metadata.correlation_id
    request_id = out.headers.get(HEADER_REQUEST_ID) or getattr(message, "request_id", None)
    return request_id if isinstance(request_id, str) else None
