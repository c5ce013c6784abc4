"""The runtime's own cost per message, measured in-process: what every service pays on top
of its handler (parse + validate the envelope, verify its signature, idempotency look-up
and mark, sign + produce the output and wait for Kafka's acknowledgement).

Pieces are timed one by one on realistic records (a signed ActionResult envelope, as the
execution agent consumes), then the whole `ServiceRuntime._process_batch` is timed with a
trivial handler that forwards each record, against the real broker: in batches of `batch`
records, and in batches of one (the CPU a light load's batch costs the runtime), signed
and, for comparison, with signing off.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord

from contracts import ActionResult, AgentName
from contracts.actions import ActionStatus, ActionType, Channel
from services.common.envelope_security import EnvelopeSecurity
from services.common.idempotency import IdempotencyStore
from services.common.logging import configure as configure_logging
from services.common.messages import encode, envelope_parser, make_envelope
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime, Subscription
from services.common.security.batch_signing import BatchEntry
from services.common.settings import Settings, TopicNames
from services.common.topics import delete_topics, ensure_topics

CONSUMER = AgentName.EXECUTION_AGENT.value
PRODUCER = AgentName.WEBHOOK_PROCESSOR.value
ONE_BY_ONE = 500  # batches of one record timed, signed and unsigned
_CONTENT_TYPE = {"content-type": "application/json"}


def _result(i: int) -> ActionResult:
    return ActionResult(
        action_id=f"act-{i}",
        request_id=f"req-{i}",
        based_on="ins-1",
        type=ActionType.NOTIFICATION,
        channel=Channel.SLACK,
        destination="slack_revops_alerts",
        target="https://hooks.slack.com/services/X",
        status=ActionStatus.SUCCESS,
        attempts=1,
        response_code=200,
        response={"ok": True},
        latency_ms=3.2,
    )


def _records(
    settings: Settings, count: int, offset0: int = 0, batch: int = 500, *, signed: bool = True
) -> list[ConsumerRecord[Any, Any]]:
    """Signed as the producer's mode says: per record, or one root per `batch` records
    (`signed=False`: the content type alone, as with `REVOPS_SIGNING_ENABLED=false`)."""
    signer = EnvelopeSecurity(PRODUCER, settings) if signed else None
    topic = settings.topics.action_results
    out = []
    envelopes = []
    for i in range(count):
        res = _result(offset0 + i)
        env = make_envelope(
            res,
            request_id=res.request_id,
            flow_id="flow-1",
            correlation_id=res.request_id,
            source=PRODUCER,
            target=CONSUMER,
            stage=f"result:{res.action_id}",
        )
        envelopes.append((res, env, encode(env)))
    signatures: list[dict[str, str]] = []
    for start in range(0, count, batch):
        chunk = envelopes[start : start + batch]
        if signer is None:
            signatures += [{} for _ in chunk]
        elif signer.batch_signing:
            signatures += signer.sign_batch(
                [
                    BatchEntry(CONSUMER, topic, 0, res.action_id.encode(), value, _CONTENT_TYPE)
                    for res, _, value in chunk
                ]
            )
        else:
            signatures += [
                signer.sign(Outgoing(topic, res.action_id, env, audience=CONSUMER), value)
                for res, env, value in chunk
            ]
    for i, ((res, _, value), headers) in enumerate(zip(envelopes, signatures, strict=True)):
        hdrs = [(k, v.encode()) for k, v in {**_CONTENT_TYPE, **headers}.items()]
        out.append(
            ConsumerRecord(
                topic,
                0,
                offset0 + i,
                int(time.time() * 1000),
                0,
                res.action_id.encode(),
                value,
                None,
                len(res.action_id),
                len(value),
                hdrs,
            )
        )
    return out


def _per_message_us(fn: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    fn()
    return round((time.perf_counter() - started) / count * 1e6, 1)


def _settings(bootstrap: str, state: Path) -> Settings:
    prefix = f"overhead.{uuid.uuid4().hex[:8]}"
    topics = TopicNames.model_validate(
        {
            f: f"{prefix}.{f}"
            for f in ("triggers", "datasets", "decisions", "actions", "action_results")
        }
        | {"flow_results": f"{prefix}.flow_results"}
    )
    return Settings(kafka_bootstrap_servers=bootstrap, var_dir=state, topics=topics)


async def measure(bootstrap: str, count: int = 2000, batch: int = 500) -> dict[str, float]:
    """Microseconds per message for each piece, and for the whole batch path."""
    configure_logging(CONSUMER, level="INFO")  # as a service logs (else debug lines count too)
    work = Path(tempfile.mkdtemp(prefix="revops-overhead-"))
    settings = _settings(bootstrap, work)
    await ensure_topics(settings)
    records = _records(settings, count, batch=batch)
    plain = [
        Record(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers), r.timestamp)
        for r in records
    ]
    parse = envelope_parser(ActionResult, CONSUMER)
    figures: dict[str, float] = {}
    figures["parse_validate_us"] = _per_message_us(lambda: [parse(r) for r in plain], count)
    verifier = EnvelopeSecurity(CONSUMER, settings)

    def verify_all() -> None:  # as the runtime does: one call per consumed batch
        for start in range(0, count, batch):
            refused = verifier.verify_batch(plain[start : start + batch])
            assert not any(refused), "the bench's own records must verify"

    figures["verify_signature_us"] = _per_message_us(verify_all, count)
    store = IdempotencyStore(work / "idem.db")
    keys = [f"k-{i}" for i in range(count)]

    def idempotency() -> None:
        for start in range(0, count, batch):
            chunk = keys[start : start + batch]
            store.already_processed("bench", chunk)
            store.mark_processed("bench", chunk)

    figures["idempotency_check_and_mark_us"] = _per_message_us(idempotency, count)
    parsed = [parse(r) for r in plain]
    outs = [
        Outgoing(settings.topics.flow_results, p.body.action_id, p.envelope, audience=None)
        for p in parsed
    ]

    def sign_all() -> None:  # as the runtime's signing mode does (encoding included)
        for start in range(0, count, batch):
            chunk = outs[start : start + batch]
            if verifier.batch_signing:
                verifier.sign_batch(
                    [
                        BatchEntry(PRODUCER, o.topic, 0, (o.key or "").encode(), encode(o.message))
                        for o in chunk
                    ]
                )
            else:
                for o in chunk:
                    out = Outgoing(o.topic, o.key, o.message, audience=PRODUCER)
                    verifier.sign(out, encode(o.message))

    figures["sign_us"] = _per_message_us(sign_all, count)

    try:
        async with _running(settings) as runtime:
            started = time.perf_counter()
            for start in range(0, count, batch):
                await runtime.publish(outs[start : start + batch])
            figures["produce_and_ack_us"] = round((time.perf_counter() - started) / count * 1e6, 1)

            async def forward(item: Parsed, record: Record) -> list[Outgoing]:
                return [
                    Outgoing(
                        settings.topics.flow_results,
                        item.body.action_id,
                        item.envelope,
                        audience=AgentName.FLOW_OUTPUT.value,
                    )
                ]

            sub = Subscription(settings.topics.action_results, parse, forward)
            # New jti and keys: not duplicates.
            fresh = _records(settings, count, offset0=count, batch=batch)
            started = time.perf_counter()
            for start in range(0, count, batch):
                await runtime._process_batch(sub, tuple(fresh[start : start + batch]))
            figures["process_batch_total_us"] = round(
                (time.perf_counter() - started) / count * 1e6, 1
            )
            started = time.perf_counter()
            for start in range(0, count, batch):  # the same records again: all duplicates
                await runtime._process_batch(sub, tuple(fresh[start : start + batch]))
            figures["process_batch_duplicate_us"] = round(
                (time.perf_counter() - started) / count * 1e6, 1
            )
            # Light load: every batch holds one record and pays the whole fixed cost (verify one
            # root, one idempotency transaction, sign one root, one produce request and its ack).
            ones = _records(settings, ONE_BY_ONE, offset0=2 * count, batch=1)
            figures["process_batch_of_one_cpu_us"] = await _cpu_per_batch_of_one(runtime, sub, ones)
            # The same without signatures: how much of that fixed cost is the per-hop check.
            async with _running(settings.model_copy(update={"signing_enabled": False})) as unsigned:
                plain_ones = _records(
                    settings, ONE_BY_ONE, offset0=3 * count, batch=1, signed=False
                )
                figures["process_batch_of_one_unsigned_cpu_us"] = await _cpu_per_batch_of_one(
                    unsigned, sub, plain_ones
                )
    finally:  # also when a step failed: no topics left behind
        await delete_topics(settings)
    figures["messages"] = count
    figures["batch"] = batch
    return figures


@asynccontextmanager
async def _running(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    """The consumer's runtime with its producer started (no subscription polls)."""
    runtime = ServiceRuntime(CONSUMER, settings, http_port=None)
    await runtime.broker.start()
    try:
        yield runtime
    finally:
        await runtime.broker.stop()
        runtime.idempotency.close()


async def _cpu_per_batch_of_one(
    runtime: ServiceRuntime, sub: Subscription, records: list[ConsumerRecord[Any, Any]]
) -> float:
    """CPU microseconds of `_process_batch` per batch, each batch one of `records`."""
    cpu = time.process_time()
    for record in records:
        await runtime._process_batch(sub, (record,))
    return round((time.process_time() - cpu) / len(records) * 1e6, 1)


if __name__ == "__main__":
    import json
    import os

    print(
        json.dumps(
            asyncio.run(
                measure(os.environ.get("REVOPS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"))
            )
        )
    )
