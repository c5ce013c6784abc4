"""Open-loop load: publish triggers at a fixed rate and collect every flow output.

Latency is measured from the moment a trigger is handed to the producer to the produce
timestamp of its flow output record (Kafka CreateTime, set by the execution agent), both
wall-clock on this machine, so the collector's own delay does not count.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts import RawTrigger
from services.common.flows import flow_results_consumer
from services.common.kafka_security import aiokafka_options
from services.common.settings import Settings


@dataclass(frozen=True)
class FlowSeen:
    request_id: str
    message_id: str
    status: str
    produced_at: float  # seconds, wall clock (record timestamp)
    position: str


@dataclass
class FlowCollector:
    """Reads the run's flow-results topic from the beginning, keeping every record
    (duplicates included) until stopped."""

    settings: Settings
    seen: dict[str, list[FlowSeen]] = field(default_factory=dict)
    records: int = 0
    rereads: int = 0
    _positions: set[str] = field(default_factory=set)
    _task: asyncio.Task[None] | None = None
    _consumer: AIOKafkaConsumer | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        consumer, tps = await flow_results_consumer(self.settings)
        await consumer.seek_to_beginning(*tps)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=200)
            except KafkaError:  # broker restart: the consumer reconnects by itself
                await asyncio.sleep(0.5)
                continue
            for records in batch.values():
                for record in records:
                    self._add(record)
            if batch:
                self._changed.set()

    def _add(self, record: object) -> None:
        envelope = orjson.loads(record.value)  # type: ignore[attr-defined]
        payload = envelope["payload"]
        flow = FlowSeen(
            request_id=payload["request_id"],
            message_id=envelope["metadata"]["message_id"],
            status=payload["status"],
            produced_at=record.timestamp / 1000,  # type: ignore[attr-defined]
            position=f"{record.partition}/{record.offset}",  # type: ignore[attr-defined]
        )
        self.records += 1
        if flow.position in self._positions:  # our own re-read (reconnect), not the system's
            self.rereads += 1
            return
        self._positions.add(flow.position)
        self.seen.setdefault(flow.request_id, []).append(flow)

    def completed(self, wanted: set[str]) -> int:
        return sum(1 for r in wanted if r in self.seen)

    async def wait_for(self, wanted: set[str], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.completed(wanted) < len(wanted):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()


class TriggerPublisher:
    """Publishes triggers keyed by account (like `publish_triggers`), remembering when each
    was handed over; a send that fails (broker away) is retried with the same request id,
    which the data agent deduplicates."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sent_at: dict[str, float] = {}
        self.resends = 0
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            acks="all",
            linger_ms=self.settings.kafka_linger_ms,  # as the services' producers (and the peer's)
            request_timeout_ms=5000,
            **aiokafka_options(self.settings),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, triggers: Sequence[RawTrigger]) -> None:
        assert self._producer is not None
        pending = list(triggers)
        while pending:
            futures = []
            for trigger in pending:
                key = (trigger.parameters.account_id or "fleet").encode()
                value = orjson.dumps(trigger.model_dump(mode="json", exclude_none=True))
                self.sent_at.setdefault(str(trigger.request_id), time.time())
                try:
                    futures.append(
                        await self._producer.send(self.settings.topics.triggers, value, key=key)
                    )
                except KafkaError:
                    futures.append(None)
            results = await asyncio.gather(
                *(f for f in futures if f is not None), return_exceptions=True
            )
            failed_iter = iter(results)
            retry = []
            for trigger, fut in zip(pending, futures, strict=True):
                if fut is None or isinstance(next(failed_iter), Exception):
                    retry.append(trigger)
            if retry:
                self.resends += len(retry)
                await asyncio.sleep(0.5)
            pending = retry

    async def send_at_rate(
        self, triggers: Sequence[RawTrigger], rate: float, tick_s: float = 0.01
    ) -> float:
        """Open loop: `rate` triggers per second regardless of how the pipeline keeps up.
        Returns the seconds publishing took."""
        started = time.monotonic()
        sent = 0
        while sent < len(triggers):
            due = min(len(triggers), int((time.monotonic() - started) * rate) + 1)
            if due > sent:
                await self.send(triggers[sent:due])
                sent = due
            await asyncio.sleep(tick_s)
        return time.monotonic() - started


@dataclass(frozen=True)
class LoadResult:
    offered_rate: float
    triggers: int
    completed: int
    publish_s: float
    span_s: float  # first publish -> last flow output
    throughput: float  # completed / span
    steady_throughput: float  # between the 10th and the 90th percentile completion
    latency_ms: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        return {
            "offered_rate": self.offered_rate,
            "triggers": self.triggers,
            "completed": self.completed,
            "publish_s": round(self.publish_s, 2),
            "span_s": round(self.span_s, 2),
            "throughput_flows_per_s": round(self.throughput, 1),
            "steady_throughput_flows_per_s": round(self.steady_throughput, 1),
            "latency_ms": self.latency_ms,
        }


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    if not values_ms:
        return {}
    arr = np.asarray(values_ms)
    return {
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p95": round(float(np.percentile(arr, 95)), 1),
        "p99": round(float(np.percentile(arr, 99)), 1),
        "max": round(float(arr.max()), 1),
        "mean": round(float(arr.mean()), 1),
    }


async def run_load(
    settings: Settings,
    collector: FlowCollector,
    triggers: Sequence[RawTrigger],
    rate: float,
    drain_timeout_s: float = 120.0,
) -> LoadResult:
    publisher = TriggerPublisher(settings)
    await publisher.start()
    try:
        publish_s = await publisher.send_at_rate(triggers, rate)
    finally:
        await publisher.stop()
    wanted = {str(t.request_id) for t in triggers}
    await collector.wait_for(wanted, drain_timeout_s)
    latencies = []
    done_times = []
    for rid in wanted:
        flows = collector.seen.get(rid)
        if flows:
            first = min(f.produced_at for f in flows)
            done_times.append(first)
            latencies.append((first - publisher.sent_at[rid]) * 1000)
    start = min(publisher.sent_at[r] for r in wanted)
    done_times.sort()
    span = (done_times[-1] - start) if done_times else 0.0
    steady = 0.0
    if len(done_times) >= 20:
        lo, hi = done_times[len(done_times) // 10], done_times[(len(done_times) * 9) // 10]
        steady = (len(done_times) * 0.8) / max(hi - lo, 1e-6)
    return LoadResult(
        offered_rate=rate,
        triggers=len(triggers),
        completed=len(done_times),
        publish_s=publish_s,
        span_s=span,
        throughput=len(done_times) / span if span else 0.0,
        steady_throughput=steady,
        latency_ms=percentiles(latencies),
    )
