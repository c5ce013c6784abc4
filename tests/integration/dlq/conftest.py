"""Dead letters in a real DLQ, and the `revops dlq` commands run against them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner, Result

from services.common.dlq import HEADER_DLQ_CODE, build_error_envelope
from services.common.errors import PermanentError
from services.common.messages import encode
from services.common.records import Record
from services.common.retry import RetryPolicy
from services.common.settings import get_settings
from services.dlq.cli import dlq_app


@dataclass
class Cli:
    var_dir: Path

    async def __call__(self, *args: str) -> Result:
        # The commands call asyncio.run: run them off the test's event loop.
        return await asyncio.to_thread(CliRunner().invoke, dlq_app, list(args))


@pytest.fixture
def cli(kafka, tmp_path, monkeypatch) -> Iterator[Cli]:
    monkeypatch.setenv("REVOPS_KAFKA_BOOTSTRAP_SERVERS", kafka)
    monkeypatch.setenv("REVOPS_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield Cli(tmp_path / "var")
    get_settings.cache_clear()


async def dead_letter(
    bootstrap: str,
    src: str,
    value: dict,
    *,
    code: str,
    key: bytes = b"acct-1",
    offset: int = 0,
    timestamp_ms: int | None = None,
) -> None:
    """Put one error envelope on `<src>.dlq`, built the way the runtime builds it."""
    record = Record(
        src, 0, offset, key, orjson.dumps(value), (("content-type", b"application/json"),)
    )
    error = build_error_envelope(
        record,
        PermanentError(f"failed with {code}", code=code),
        attempts=1,
        service="tester",
        consumer_group="revops.tester",
        policy=RetryPolicy(max_attempts=3, initial_delay_s=0.1, max_delay_s=1.0, jitter=0.0),
        envelope=None,
    )
    await produce_error(bootstrap, f"{src}.dlq", key, encode(error), code, timestamp_ms)


async def produce_error(
    bootstrap: str, topic: str, key: bytes, value: bytes, code: str, timestamp_ms: int | None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            value,
            key=key,
            timestamp_ms=timestamp_ms,
            headers=[(HEADER_DLQ_CODE, code.encode())],
        )
    finally:
        await producer.stop()
