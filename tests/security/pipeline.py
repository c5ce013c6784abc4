"""Helpers the pipeline-level security tests share: real triggers, signed and forged records."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts import AnalysisType, FlowOutput, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from services.common.flows import FlowWatcher, publish_triggers
from services.common.ids import flow_id_for
from services.common.messages import encode, make_envelope
from services.common.security import AUTH_HEADER, KeyRing
from services.common.security.batch_signing import BatchEntry, BatchSigner
from services.common.security.keys import generate_key_files
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.queries import LIST_OPEN_OPPORTUNITIES
from tests.kafka_tools import collect
from tests.security.conftest import SecureStack

Headers = list[tuple[str, bytes]]


def open_deals(stack: SecureStack, count: int) -> list[dict[str, Any]]:
    wh = open_warehouse(stack.settings)
    try:
        return wh.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": count})
    finally:
        wh.close()


def deal_trigger(deal: dict[str, Any], tag: str = "sec") -> RawTrigger:
    return RawTrigger(
        trigger_type=TriggerType.MANUAL,
        parameters=TriggerParameters(
            account_id=str(deal["sf_account_id"]),
            opportunity_id=str(deal["opportunity_id"]),
            analysis_type=AnalysisType.DEAL_QUALITY,
        ),
        request_id=f"{tag}-{uuid.uuid4()}",
    )


async def run_flows(
    stack: SecureStack, triggers: list[RawTrigger], timeout_s: float = 60.0
) -> list[FlowOutput]:
    """Publish the triggers; return the flow outputs of their request ids once all arrived."""
    watcher = FlowWatcher(stack.settings)
    await watcher.start()
    seen: dict[str, FlowOutput] = {}
    try:
        await publish_triggers(stack.settings, triggers)
        wanted = {t.request_id for t in triggers}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not wanted <= set(seen):
            seen.update({f.request_id: f for f in await watcher.poll() if f.request_id in wanted})
    finally:
        await watcher.stop()
    return list(seen.values())


async def produce_raw(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes, bytes | None, Headers]],
    *,
    partition: int | None = None,
) -> None:
    """(key, value, headers) as given: no signing, the attacker's own client; to `partition`,
    or where the key maps to."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(
                topic, value, key=key, headers=headers, partition=partition
            )
    finally:
        await producer.stop()


async def dead_letters(
    stack: SecureStack, topic: str, key: bytes, count: int, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """The error envelopes on `<topic>.dlq` keyed `key` (waits until `count` arrived)."""
    import orjson

    deadline = time.monotonic() + timeout_s
    ours: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = await collect(stack.kafka, f"{topic}.dlq", 100_000, timeout_s=1.5)
        ours = [orjson.loads(r.value) for r in records if r.key == key]
        if len(ours) >= count:
            break
        await asyncio.sleep(0.3)
    return ours


def genuine_signer(stack: SecureStack, service: str) -> BatchSigner:
    """The service's real key (what an insider with the key file could do)."""
    return BatchSigner(service, KeyRing.from_directory(stack.keys_dir, service))


def foreign_signer(directory: Path, service: str, kid: str) -> BatchSigner:
    """A key pair nobody trusts, claiming to be `service` with key id `kid`."""
    generate_key_files(directory, service, kid)
    return BatchSigner(service, KeyRing.from_directory(directory, service))


def signed(signer: BatchSigner, value: bytes, audience: str, now: float | None = None) -> Headers:
    """A per-record token (REVOPS_SIGNING_MODE=record)."""
    token = signer.sign(value, audience, f"msg-{uuid.uuid4()}", now=now)
    return [(AUTH_HEADER, token.encode()), ("content-type", b"application/json")]


def batch_signed(
    signer: BatchSigner,
    value: bytes,
    audience: str,
    *,
    topic: str,
    key: bytes,
    partition: int,
    now: float | None = None,
) -> Headers:
    """The headers of a signed batch of one (REVOPS_SIGNING_MODE=batch): the record must be
    produced to `topic`/`partition` with `key`."""
    content_type = {"content-type": "application/json"}
    entry = BatchEntry(audience, topic, partition, key, value, content_type)
    [headers] = signer.sign_batch([entry], now=now)
    return [(name, text.encode()) for name, text in {**headers, **content_type}.items()]


def kid_of(stack: SecureStack, service: str) -> str:
    return KeyRing.from_directory(stack.keys_dir, service).kids(service)[-1]


def job_envelope(job: Any, source: str, target: str) -> bytes:
    envelope = make_envelope(
        job,
        request_id=job.request_id,
        flow_id=flow_id_for(job.request_id),
        correlation_id=job.request_id,
        source=source,
        target=target,
        stage=f"action:{job.action_id}",
    )
    return encode(envelope)
