"""The runtime's consumer poll (no sleep after an empty poll, the cap read at every poll)
and the Kafka headers it writes when producing straight to aiokafka."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from services.common.runtime import partition_for, poll_without_idle_sleep, wire_headers


class FakeSubscriber:
    batch_timeout_ms = 200
    max_records = 50


class FakeConsumer:
    def __init__(self, answers: list[dict[TopicPartition, list[str]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[int, int]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[str]]:
        self.calls.append((timeout_ms, max_records))
        return self.answers.pop(0)


async def test_an_empty_poll_returns_at_once_without_sleeping(monkeypatch) -> None:
    async def no_sleep(*_: object) -> None:
        raise AssertionError("the poll slept")

    monkeypatch.setattr("anyio.sleep", no_sleep)
    monkeypatch.setattr("asyncio.sleep", no_sleep)
    subscriber = FakeSubscriber()
    consumer = FakeConsumer([{}, {}])
    poll = poll_without_idle_sleep(subscriber)
    assert await poll(consumer) == ()
    subscriber.max_records = 100  # the adaptive cap moved: the next poll asks for it
    assert await poll(consumer) == ()
    assert consumer.calls == [(200, 50), (200, 100)]


async def test_a_poll_returns_every_partitions_records_in_order() -> None:
    consumer = FakeConsumer(
        [{TopicPartition("t", 0): ["a0", "a1"], TopicPartition("t", 3): ["b0"]}]
    )
    got = await poll_without_idle_sleep(FakeSubscriber())(consumer)
    assert got == ("a0", "a1", "b0")


def test_wire_headers_put_content_type_and_correlation_id_first() -> None:
    headers = {"content-type": "application/json", "x-dlq-code": "BAD", "auth": "tok"}
    assert wire_headers(headers, "corr-1") == [
        ("content-type", b"application/json"),
        ("correlation_id", b"corr-1"),
        ("x-dlq-code", b"BAD"),
        ("auth", b"tok"),
    ]


def test_a_record_without_a_correlation_id_gets_a_fresh_one() -> None:
    first = dict(wire_headers({"content-type": "application/json"}, None))
    second = dict(wire_headers({"content-type": "application/json"}, None))
    assert len(first["correlation_id"]) == 36  # a uuid4, as FastStream's publish wrote
    assert first["correlation_id"] != second["correlation_id"]


@pytest.mark.parametrize("key", [b"acc-1", b"acc-2", b"0001", b"\xff\x00"])
def test_partition_for_is_kafkas_murmur2_of_the_key(key: bytes) -> None:
    partitions = [0, 1, 2, 3, 4, 5]
    # Kafka's Java client: positive murmur2 of the key modulo the partition count.
    assert partition_for(key, partitions) == (murmur2(key) & 0x7FFFFFFF) % len(partitions)
