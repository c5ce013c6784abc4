"""Batch signatures in the runtime, on a real broker: a consumer verifies a signed batch at
once and refuses a tampered record alone and a replayed batch whole; a producer in
`REVOPS_SIGNING_MODE=batch` signs its outputs per flush, on the partition its key maps to,
and per-account order holds through two stages with partitions handled concurrently."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from contracts import AgentName
from services.common.envelope_security import EnvelopeSecurity
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime, Subscription
from services.common.security import AUTH_HEADER
from services.common.security.batch_signing import (
    BATCH_PROOF_HEADER,
    BATCH_TOKEN_HEADER,
    BatchEntry,
)
from services.common.settings import Settings, TopicNames
from tests.integration.test_runtime import parse_echo
from tests.kafka_tools import collect, create_topics, unique

pytestmark = pytest.mark.kafka

DATA_AGENT = AgentName.DATA_AGENT.value
DECISION_AGENT = AgentName.DECISION_AGENT.value
Headers = list[tuple[str, bytes]]


def signed_settings(kafka: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Topics of their own, the real signing policy (topic -> issuers and audience)."""
    prefix = unique("t.sig")
    topics = TopicNames.model_validate(
        {
            name: f"{prefix}.{name}"
            for name in (
                "triggers",
                "datasets",
                "decisions",
                "actions",
                "action_results",
                "flow_results",
            )
        }
    )
    return Settings(
        kafka_bootstrap_servers=kafka,
        var_dir=tmp_path / "var",
        topics=topics,
        retry_initial_delay_s=0.05,
        **overrides,
    )


def runtime(settings: Settings, name: str, state: Path) -> ServiceRuntime:
    return ServiceRuntime(name, settings.model_copy(update={"state_dir": state}), http_port=None)


async def produce_records(
    kafka: str, topic: str, records: list[tuple[bytes, bytes, Headers]]
) -> None:
    """(key, value, headers) to partition 0, as given: the attacker's own client."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, partition=0, headers=headers)
    finally:
        await producer.stop()


def dead_letter_codes(records: list[Any]) -> list[str]:
    return [orjson.loads(r.value)["error"]["code"] for r in records]


async def test_a_tampered_record_is_refused_alone_and_a_replayed_batch_whole(
    kafka: str, tmp_path: Path
) -> None:
    settings = signed_settings(kafka, tmp_path, signing_mode="batch")
    datasets, out = settings.topics.datasets, unique("t.out")
    await create_topics(kafka, [datasets, f"{datasets}.dlq", out], partitions=1)
    values = [orjson.dumps({"n": i, "id": f"r{i}"}) for i in range(20)]
    content_type = {"content-type": "application/json"}
    batch = EnvelopeSecurity(DATA_AGENT, settings).sign_batch(
        [BatchEntry(DECISION_AGENT, datasets, 0, b"acc", v, content_type) for v in values]
    )
    assert len({h[BATCH_TOKEN_HEADER] for h in batch}) == 1, "one root for the 20 records"
    genuine = [
        (b"acc", value, [(k, v.encode()) for k, v in {**content_type, **headers}.items()])
        for value, headers in zip(values, batch, strict=True)
    ]
    tampered = list(genuine)
    tampered[7] = (b"acc", orjson.dumps({"n": 700, "id": "r7"}), genuine[7][2])

    consumer = runtime(settings, DECISION_AGENT, tmp_path / "decision")

    async def echo(item: Parsed, record: Record) -> list[Outgoing]:
        return [Outgoing(out, "acc", item.body)]

    consumer.subscribe(datasets, parse_echo, echo)
    await consumer.start()
    try:
        await produce_records(kafka, datasets, tampered)
        outs = await collect(kafka, out, 19, settle_s=0.5)
        refused = await collect(kafka, f"{datasets}.dlq", 1, settle_s=0.5)
        # The same 19 genuine records again (same bytes and headers, new offsets).
        await produce_records(kafka, datasets, [r for i, r in enumerate(genuine) if i != 7])
        refused = await collect(kafka, f"{datasets}.dlq", 20, settle_s=0.5)
        outs_after = await collect(kafka, out, 20, timeout_s=2)
    finally:
        await consumer.stop()

    assert [orjson.loads(r.value)["id"] for r in outs] == [f"r{i}" for i in range(20) if i != 7]
    assert len(outs_after) == 19, "nothing replayed was handled"
    codes = dead_letter_codes(refused)
    assert codes[0] == "AUTHENTICATION_FAILED_PAYLOAD_MISMATCH"
    assert orjson.loads(orjson.loads(refused[0].value)["original"]["value"])["n"] == 700
    assert codes[1:] == ["AUTHENTICATION_FAILED_REPLAYED"] * 19
    # Dead letters stay unsigned (only the replay tool reads them), batch signing or not.
    for dead in refused:
        names = {name for name, _ in dead.headers}
        assert not names & {AUTH_HEADER, BATCH_TOKEN_HEADER, BATCH_PROOF_HEADER}


async def test_batch_signed_outputs_keep_per_account_order_through_concurrent_partitions(
    kafka: str, tmp_path: Path
) -> None:
    """Stage 1 (as the data agent) reads unsigned triggers and sends batch-signed records to
    stage 2 (as the decision agent), which verifies them; both handle a batch's partitions
    concurrently, and some partitions' handlers are slow."""
    settings = signed_settings(kafka, tmp_path, signing_mode="batch", partition_concurrency=6)
    topics = settings.topics
    await create_topics(
        kafka,
        [topics.triggers, topics.datasets, f"{topics.triggers}.dlq", f"{topics.datasets}.dlq"],
        partitions=6,
    )
    accounts, per_account = 40, 10
    slow = {f"acc-{i}" for i in range(0, accounts, 3)}
    seen: dict[str, dict[str, list[int]]] = {
        "stage1": defaultdict(list),
        "stage2": defaultdict(list),
    }
    partitions_of: dict[str, set[int]] = defaultdict(set)

    def stage(name: str, forward_to: str | None) -> Any:
        async def handle(item: Parsed, record: Record) -> list[Outgoing]:
            key = record.key.decode() if record.key else ""
            seen[name][key].append(item.body.n)
            if name == "stage2":
                partitions_of[key].add(record.partition)
            if key in slow:
                await asyncio.sleep(0.01)  # lets the other partitions' groups overtake
            return [Outgoing(forward_to, key, item.body)] if forward_to else []

        return handle

    first = runtime(settings, DATA_AGENT, tmp_path / "data")
    first.subscribe(topics.triggers, parse_echo, stage("stage1", topics.datasets))
    second = runtime(settings, DECISION_AGENT, tmp_path / "decision")
    second.subscribe(topics.datasets, parse_echo, stage("stage2", None))
    order = [(f"acc-{a}", n) for n in range(per_account) for a in range(accounts)]
    await first.start()
    await second.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=5)
        await producer.start()
        try:
            sends = [
                await producer.send(
                    topics.triggers,
                    orjson.dumps({"n": n, "id": f"{key}-{n}"}),
                    key=key.encode(),
                )
                for key, n in order
            ]
            await asyncio.gather(*sends)
        finally:
            await producer.stop()
        deadline = time.monotonic() + 60
        while sum(map(len, seen["stage2"].values())) < accounts * per_account:
            assert time.monotonic() < deadline, "stage 2 did not receive every record"
            await asyncio.sleep(0.1)
        datasets = await collect(kafka, topics.datasets, accounts * per_account)
        refused = await collect(kafka, f"{topics.datasets}.dlq", 1, timeout_s=2)
    finally:
        await first.stop()
        await second.stop()

    in_order = {f"acc-{a}": list(range(per_account)) for a in range(accounts)}
    assert dict(seen["stage1"]) == in_order
    assert dict(seen["stage2"]) == in_order
    assert refused == []
    # Every record carries a batch signature (no per-record token) and sits on the partition
    # Kafka's default partitioner picks for its key, so an account stays on one partition.
    partitioner = DefaultPartitioner()
    for record in datasets:
        names = {name for name, _ in record.headers}
        assert {BATCH_TOKEN_HEADER, BATCH_PROOF_HEADER} <= names
        assert AUTH_HEADER not in names
        assert record.partition == partitioner(record.key, list(range(6)), list(range(6)))
    assert all(len(p) == 1 for p in partitions_of.values())


async def test_a_partition_groups_outputs_are_acknowledged_before_a_later_group_finishes(
    kafka: str, tmp_path: Path
) -> None:
    """With batch signing, a partition group's outputs leave when its handler returns, not at
    the end of the consumed batch: partition 1's handler waits until partition 0's output is
    readable from Kafka (so acknowledged), which would never happen if the batch's outputs
    were flushed at its end (the linger is an hour, so no timer releases them either)."""
    settings = signed_settings(
        kafka, tmp_path, signing_mode="batch", partition_concurrency=2, output_linger_ms=3.6e6
    )
    topics = settings.topics
    await create_topics(kafka, [topics.triggers, topics.datasets], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for key in ("a", "d"):
            value = orjson.dumps({"n": 1, "id": f"{key}1"})
            await producer.send_and_wait(topics.triggers, value, key=key.encode())
    finally:
        await producer.stop()
    raw = await collect(kafka, topics.triggers, 2)
    assert sorted(r.partition for r in raw) == [0, 1], "keys a and d must land apart"
    stage = runtime(settings, DATA_AGENT, tmp_path / "data")
    early: list[Any] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        key = record.key.decode() if record.key else ""
        if record.partition == 1:
            early.extend(await collect(kafka, topics.datasets, 1, timeout_s=20))
        return [Outgoing(topics.datasets, key, item.body)]

    await stage.broker.start()  # the producer only: no subscriber reads the triggers
    try:
        sub = Subscription(topics.triggers, parse_echo, handle)
        await asyncio.wait_for(stage._process_batch(sub, tuple(raw)), timeout=60)
        outs = await collect(kafka, topics.datasets, 2)
    finally:
        await stage.broker.stop()
        stage.idempotency.close()
    assert [orjson.loads(r.value)["id"] for r in early] == ["a1"]
    assert sorted(orjson.loads(r.value)["id"] for r in outs) == ["a1", "d1"]
    for record in outs:  # each group's flush is a signed batch of its own
        assert {BATCH_TOKEN_HEADER, BATCH_PROOF_HEADER} <= {name for name, _ in record.headers}
    assert len({dict(r.headers)[BATCH_TOKEN_HEADER] for r in outs}) == 2
