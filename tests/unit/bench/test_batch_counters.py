"""Records per consumed batch, read from the services' `revops_batch_records` histograms."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from bench.harness import batch_counters, records_per_batch
from bench.sink import free_port
from tests.support.http_recorder import HttpRecorder

METRICS = """\
# HELP revops_batch_records Records per consumed batch
# TYPE revops_batch_records histogram
revops_batch_records_bucket{le="1.0",service="data_agent",topic="bench.x.triggers"} 8.0
revops_batch_records_bucket{le="+Inf",service="data_agent",topic="bench.x.triggers"} 10.0
revops_batch_records_count{service="data_agent",topic="bench.x.triggers"} 10.0
revops_batch_records_sum{service="data_agent",topic="bench.x.triggers"} 25.0
# HELP revops_messages_consumed_total Records consumed
# TYPE revops_messages_consumed_total counter
revops_messages_consumed_total{service="data_agent",topic="bench.x.triggers"} 25.0
"""


@pytest.fixture
def metrics_port() -> Iterator[int]:
    with HttpRecorder() as server:
        server.respond("/metrics", text=METRICS, headers={"Content-Type": "text/plain"})
        yield server.port


def test_batch_counters_reads_batches_and_records_per_consumer(metrics_port: int) -> None:
    closed = free_port()  # nothing listens there: a service that is not serving
    pipeline: Any = SimpleNamespace(stack=SimpleNamespace(ports={"a": metrics_port, "b": closed}))
    assert batch_counters(pipeline) == {"data_agent/triggers": (10.0, 25.0)}


def test_records_per_batch_is_the_phase_difference() -> None:
    before = {"data_agent/triggers": (10.0, 25.0), "decision_agent/datasets": (4.0, 4.0)}
    after = {
        "data_agent/triggers": (14.0, 45.0),  # 4 batches, 20 records in the phase
        "decision_agent/datasets": (4.0, 4.0),  # nothing consumed in the phase
        "webhook_processor/actions": (3.0, 3.0),  # first seen after the phase began
    }
    assert records_per_batch(before, after) == {
        "data_agent/triggers": 5.0,
        "webhook_processor/actions": 1.0,
    }
