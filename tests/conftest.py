from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.kafka_broker import kafka_bootstrap


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """A real Kafka broker's bootstrap address (see tests/kafka_broker.py for the order)."""
    try:
        ctx = kafka_bootstrap()
        bootstrap, how = ctx.__enter__()
    except Exception as exc:
        if os.environ.get("CI"):
            raise  # in CI a missing broker (or java) must fail loudly, never skip
        pytest.skip(f"no Kafka broker available: {exc}")
    print(f"\nKafka for tests: {bootstrap} ({how})")
    try:
        yield bootstrap
    finally:
        ctx.__exit__(None, None, None)
