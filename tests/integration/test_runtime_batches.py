"""The runtime's batch-first unit of work against a real broker: one poison record in a batch
of 500 is dead-lettered alone, a batch handler's failed and deferred records fall back to the
per-record handler in order, and partitions are handled concurrently without breaking
per-key order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common.errors import PermanentError
from services.common.records import BatchOutcome, Deferred, Outgoing, Parsed, ProducedMark, Record
from services.common.runtime import ServiceRuntime, Subscription
from services.common.stores.database import StoreUnavailableError
from tests.integration.test_runtime import Echo, make_runtime, parse_echo
from tests.kafka_tools import collect, create_topics, unique

pytestmark = pytest.mark.kafka

BATCH = 500
POISON = -1  # an echo with this n fails in every handler, every time


async def produce_keyed(bootstrap: str, topic: str, records: Sequence[tuple[str, Any]]) -> None:
    """(key, JSON value) pairs, in order, all acknowledged before returning."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, orjson.dumps(value), key=key.encode())
            for key, value in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return [(await consumer.committed(tp)) or 0 for tp in tps]
    finally:
        await consumer.stop()


async def wait_for_commit(
    bootstrap: str, group: str, topic: str, expected: list[int], timeout_s: float = 30.0
) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        offsets = await committed_offsets(bootstrap, group, topic, len(expected))
        if offsets == expected or time.monotonic() > deadline:
            return offsets
        await asyncio.sleep(0.2)


def spy_batches(runtime: ServiceRuntime) -> list[int]:
    """The size of every batch the runtime processes."""
    sizes: list[int] = []
    original = runtime._process_batch

    async def spy(sub: Any, raw: Any) -> None:
        sizes.append(len(raw))
        await original(sub, raw)

    runtime._process_batch = spy  # type: ignore[method-assign]
    return sizes


def check_poison(body: Echo) -> None:
    if body.n == POISON:
        raise PermanentError("this echo is poison", code="POISON")


@pytest.mark.parametrize("position", [0, BATCH // 2, BATCH - 1], ids=["first", "middle", "last"])
@pytest.mark.parametrize("batched", [False, True], ids=["per-record", "handle_batch"])
async def test_one_poison_record_in_a_batch_of_500_is_dead_lettered_alone(
    kafka: str, tmp_path: Path, position: int, batched: bool
) -> None:
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, f"{src}.dlq"], partitions=1)
    await create_topics(kafka, [out])
    # 50 accounts, one record each in turn: the poison's account has records after it.
    records = [
        (f"acc-{i % 50}", {"n": POISON if i == position else i, "id": f"r{i}"})
        for i in range(BATCH)
    ]
    await produce_keyed(kafka, src, records)  # all in the topic first: one batch
    runtime = make_runtime(kafka, tmp_path, "poison", batch_min_records=BATCH)
    per_record: list[str] = []
    batch_calls: list[int] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        per_record.append(item.body.id)
        check_poison(item.body)
        return [Outgoing(out, record.key.decode() if record.key else None, item.body)]

    async def handle_batch(items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
        batch_calls.append(len(items))
        failed_keys: set[bytes | None] = set()
        outcomes: list[BatchOutcome] = []
        for item, record in items:
            if record.key in failed_keys:
                outcomes.append(Deferred())
                continue
            try:
                check_poison(item.body)
            except PermanentError as exc:
                failed_keys.add(record.key)
                outcomes.append(exc)
                continue
            key = record.key.decode() if record.key else None
            outcomes.append([Outgoing(out, key, item.body)])
        return outcomes

    runtime.subscribe(src, parse_echo, handle, handle_batch=handle_batch if batched else None)
    sizes = spy_batches(runtime)
    await runtime.start()
    try:
        outs = await collect(kafka, out, BATCH - 1, settle_s=0.5)
        dlq = await collect(kafka, f"{src}.dlq", 1, settle_s=0.5)
        offsets = await wait_for_commit(kafka, runtime.group_id, src, [BATCH])
    finally:
        await runtime.stop()

    assert sizes[0] == BATCH, "the test needs the 500 records in one batch"
    assert offsets == [BATCH]
    assert len(dlq) == 1
    error = orjson.loads(dlq[0].value)
    assert error["error"]["code"] == "POISON"
    assert error["dead_letter"]["original_offset"] == position
    assert error["dead_letter"]["attempts"] == 1
    ids = [orjson.loads(r.value)["id"] for r in outs]
    assert sorted(ids) == sorted(f"r{i}" for i in range(BATCH) if i != position)
    # Outputs of each account in the order of its input records.
    for account in range(50):
        mine = [int(orjson.loads(r.value)["n"]) for r in outs if r.key == f"acc-{account}".encode()]
        assert mine == sorted(mine)
    if batched:
        assert batch_calls == [BATCH]
        # The poison, then the records of its account it deferred, each handled alone.
        poisoned = position % 50
        deferred = [f"r{i}" for i in range(position + 1, BATCH) if i % 50 == poisoned]
        assert per_record == [f"r{position}", *deferred]
    else:
        assert batch_calls == []
        assert len(per_record) == BATCH


async def run_with_batch_handler(
    kafka: str, tmp_path: Path, keys: list[str], handle_batch: Any
) -> tuple[list[str], list[str]]:
    """One batch of echoes `r0..` with these keys through a runtime with `handle_batch`
    (called with the output topic, it returns the batch handler): the ids the per-record
    handler saw, and the ids of the outputs, in order."""
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=1)
    await produce_keyed(kafka, src, [(k, {"n": i, "id": f"r{i}"}) for i, k in enumerate(keys)])
    runtime = make_runtime(kafka, tmp_path, "fallback")
    per_record: list[str] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        per_record.append(item.body.id)
        return [Outgoing(out, item.body.id, item.body)]

    runtime.subscribe(src, parse_echo, handle, handle_batch=handle_batch(out))
    await runtime.start()
    try:
        outs = await collect(kafka, out, len(keys), settle_s=0.5)
    finally:
        await runtime.stop()
    return per_record, [orjson.loads(r.value)["id"] for r in outs]


async def test_batch_handler_failing_as_a_whole_falls_back_to_per_record(
    kafka: str, tmp_path: Path
) -> None:
    calls: list[list[str]] = []

    async def handle_batch(items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
        calls.append([p.body.id for p, _ in items])
        if len(calls) == 1:
            raise StoreUnavailableError("store restarting")  # waited out, same items again
        raise RuntimeError("the batch query failed")  # every record handled alone

    keys = [f"k{i}" for i in range(10)]
    per_record, outputs = await run_with_batch_handler(
        kafka, tmp_path, keys, lambda out: handle_batch
    )
    expected = [f"r{i}" for i in range(10)]
    assert calls == [expected, expected]
    assert per_record == expected
    assert outputs == expected


async def test_a_batch_handler_answer_of_the_wrong_length_falls_back_to_per_record(
    kafka: str, tmp_path: Path
) -> None:
    async def handle_batch(items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
        return [[]]  # one answer for several records

    per_record, outputs = await run_with_batch_handler(
        kafka, tmp_path, ["k"] * 3, lambda out: handle_batch
    )
    assert per_record == ["r0", "r1", "r2"]
    assert outputs == ["r0", "r1", "r2"]


async def test_a_failed_record_and_the_ones_it_deferred_are_handled_alone_in_order(
    kafka: str, tmp_path: Path
) -> None:
    """r0 (key a) fails in the batch call and succeeds alone; r2 (key a) was deferred, so it
    is handled after r0; key b's records come from the batch call. Outputs stay in offset
    order."""

    def batch_handler(out: str) -> Any:
        async def handle_batch(items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
            answers: list[BatchOutcome] = []
            for parsed, record in items:
                if parsed.body.id == "r0":
                    answers.append(ConnectionError("lock timeout"))  # rolled back
                elif record.key == b"a":
                    answers.append(Deferred())
                else:
                    answers.append([Outgoing(out, parsed.body.id, parsed.body)])
            return answers

        return handle_batch

    per_record, outputs = await run_with_batch_handler(
        kafka, tmp_path, ["a", "b", "a", "b"], batch_handler
    )
    assert per_record == ["r0", "r2"]
    assert outputs == ["r0", "r1", "r2", "r3"]


async def test_partitions_of_a_batch_are_handled_concurrently(kafka: str, tmp_path: Path) -> None:
    """Partition 0's first record waits for partition 1's: handled one partition after the
    other, the batch would never finish."""
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=2)
    await produce_keyed(kafka, src, [("a", {"n": 1, "id": "a1"}), ("d", {"n": 2, "id": "d1"})])
    raw = await collect(kafka, src, 2)
    assert sorted(r.partition for r in raw) == [0, 1], "keys a and d must land apart"
    runtime = make_runtime(kafka, tmp_path, "concurrent", partition_concurrency=2)
    seen: dict[int, asyncio.Event] = {0: asyncio.Event(), 1: asyncio.Event()}

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        seen[record.partition].set()
        await seen[1 - record.partition].wait()
        return [Outgoing(out, item.body.id, item.body)]

    await runtime.broker.start()  # the producer only: no subscriber reads src
    try:
        await asyncio.wait_for(
            runtime._process_batch(Subscription(src, parse_echo, handle), tuple(raw)), timeout=30
        )
        outs = await collect(kafka, out, 2)
    finally:
        await runtime.broker.stop()
        runtime.idempotency.close()
    assert sorted(orjson.loads(r.value)["id"] for r in outs) == ["a1", "d1"]


async def test_a_batch_of_one_partition_is_handled_in_the_consuming_task(
    kafka: str, tmp_path: Path
) -> None:
    """Light load's batches hold one partition: its records are handled in the task that
    processes the batch (no task of its own to create, schedule and gather), in order."""
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=2)
    await produce_keyed(kafka, src, [("a", {"n": n, "id": f"a{n}"}) for n in range(3)])
    raw = await collect(kafka, src, 3)
    runtime = make_runtime(kafka, tmp_path, "inline", partition_concurrency=2)
    handled_in: list[tuple[str, asyncio.Task[Any] | None]] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        handled_in.append((item.body.id, asyncio.current_task()))
        return [Outgoing(out, "a", item.body)]  # one key: one partition, its order kept

    await runtime.broker.start()
    try:
        batch = asyncio.ensure_future(
            runtime._process_batch(Subscription(src, parse_echo, handle), tuple(raw))
        )
        await asyncio.wait_for(batch, timeout=30)
        outs = await collect(kafka, out, 3)
    finally:
        await runtime.broker.stop()
        runtime.idempotency.close()
    assert handled_in == [(f"a{n}", batch) for n in range(3)]
    assert [orjson.loads(r.value)["id"] for r in outs] == ["a0", "a1", "a2"]


async def test_a_batch_of_duplicates_only_calls_no_handler(kafka: str, tmp_path: Path) -> None:
    """A redelivered batch whose records were all handled: skipped by key, and the batch
    handler is not called with nothing (no empty store transaction per redelivery)."""
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=1)
    await produce_keyed(kafka, src, [("a", {"n": n, "id": f"a{n}"}) for n in range(3)])
    raw = await collect(kafka, src, 3)
    runtime = make_runtime(kafka, tmp_path, "duplicates")
    calls: list[list[str]] = []

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        raise AssertionError("the batch handler answers for every record")

    async def handle_batch(items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
        calls.append([p.body.id for p, _ in items])
        return [[Outgoing(out, "a", p.body)] for p, _ in items]

    sub = Subscription(src, parse_echo, handle, handle_batch=handle_batch)
    await runtime.broker.start()
    try:
        for _ in range(2):  # the second time, every record is a duplicate
            await asyncio.wait_for(runtime._process_batch(sub, tuple(raw)), timeout=30)
        outs = await collect(kafka, out, 3)
    finally:
        await runtime.broker.stop()
        runtime.idempotency.close()
    assert calls == [["a0", "a1", "a2"]]
    assert [orjson.loads(r.value)["id"] for r in outs] == ["a0", "a1", "a2"]


async def test_the_poll_cap_starts_small_and_grows_while_polls_come_back_full(
    kafka: str, tmp_path: Path
) -> None:
    """200 records waiting, a cap of 10 doubling up to 200: the first batch is 10 records
    (the first flows wait for 10, not 200), the next ones 20, 40 and so on."""
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=1)
    await produce_keyed(kafka, src, [(f"acc-{i % 7}", {"n": i, "id": f"r{i}"}) for i in range(200)])
    runtime = make_runtime(kafka, tmp_path, "adaptive", batch_min_records=10, batch_max_records=200)

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        return [Outgoing(out, record.key.decode() if record.key else None, item.body)]

    runtime.subscribe(src, parse_echo, handle)
    sizes = spy_batches(runtime)
    await runtime.start()
    try:
        outs = await collect(kafka, out, 200)
        offsets = await wait_for_commit(kafka, runtime.group_id, src, [200])
    finally:
        await runtime.stop()
    assert offsets == [200]
    assert sorted(orjson.loads(r.value)["n"] for r in outs) == list(range(200))
    assert sizes[:3] == [10, 20, 40]
    assert sum(sizes) == 200 and max(sizes) <= 200


async def test_a_flushs_produced_marks_are_run_together_once_acknowledged(
    kafka: str, tmp_path: Path
) -> None:
    """Outputs that carry the same `ProducedMark` are marked by one call per flush, with the
    items of all of them; a plain `on_produced` still runs once per record; every mark has
    run by the time the input's offset is committed."""
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=1)
    records = 200
    await produce_keyed(
        kafka, src, [(f"acc-{i % 20}", {"n": i, "id": f"r{i}"}) for i in range(records)]
    )
    runtime = make_runtime(kafka, tmp_path, "marks", batch_min_records=records)
    mark_calls: list[list[str]] = []
    plain: list[str] = []

    def mark(items: list[str]) -> None:
        mark_calls.append(items)

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        body = item.body
        marked = Outgoing(out, body.id, body, on_produced=ProducedMark(mark, body.id))
        if body.n % 10:
            return [marked]
        return [marked, Outgoing(out, body.id, body, on_produced=lambda: plain.append(body.id))]

    runtime.subscribe(src, parse_echo, handle)
    sizes = spy_batches(runtime)
    await runtime.start()
    try:
        offsets = await wait_for_commit(kafka, runtime.group_id, src, [records])
    finally:
        await runtime.stop()

    assert sizes[0] == records, "the test needs the records in one batch"
    assert offsets == [records]
    marked = [item for call in mark_calls for item in call]
    assert sorted(marked) == sorted(f"r{i}" for i in range(records))  # each once
    assert len(mark_calls) < records / 10  # grouped per flush, not one call per record
    assert sorted(plain) == sorted(f"r{i}" for i in range(0, records, 10))


async def test_outputs_waited_for_do_not_wait_for_the_producers_linger(
    kafka: str, tmp_path: Path
) -> None:
    """With the producer's linger at a minute, a consumed batch's outputs and a component's
    own publish are still acknowledged at once: once the runtime waits for acks, the records
    the producer holds back for its linger are sent. Without that, the batch would wait out
    the linger and time out here (then the producer's stop waits out the rest of it)."""
    src, out = unique("t.src"), unique("t.out")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=2)
    await produce_keyed(kafka, src, [("a", {"n": 1, "id": "a1"}), ("d", {"n": 2, "id": "d1"})])
    raw = await collect(kafka, src, 2)
    runtime = make_runtime(kafka, tmp_path, "linger", kafka_linger_ms=60_000)

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        return [Outgoing(out, item.body.id, item.body)]

    await runtime.broker.start()  # the producer only: no subscriber reads src
    try:
        await asyncio.wait_for(
            runtime._process_batch(Subscription(src, parse_echo, handle), tuple(raw)), timeout=30
        )
        published = Echo(n=3, id="p1")
        await asyncio.wait_for(runtime.publish([Outgoing(out, "p1", published)]), timeout=30)
        outs = await collect(kafka, out, 3)
    finally:
        await runtime.broker.stop()
        runtime.idempotency.close()
    assert sorted(orjson.loads(r.value)["id"] for r in outs) == ["a1", "d1", "p1"]
