"""An end-to-end stack: the four services as separate processes on the real test broker,
a small generated warehouse, and demo destinations writing to a local outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.seed import seed_warehouse
from services.cli.orchestrator import SERVICES, LocalStack
from services.common.settings import Settings
from services.common.topics import ensure_topics
from tests.kafka_broker import free_port


@dataclass
class Stack:
    settings: Settings
    local: LocalStack
    var_dir: Path

    def metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.local.ports[service]}/metrics"


# Package scope: its services stop when the last test of this package is done, not at the
# end of the session (they would otherwise stay connected to the broker through every later
# test: one such connection once shared a local port with tests/unit/common/test_ports).
@pytest.fixture(scope="package")
def stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("e2e-var")
    env = {
        "REVOPS_VAR_DIR": str(var_dir),
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REVOPS_RETRY_INITIAL_DELAY_S": "0.1",
    }
    settings = Settings(kafka_bootstrap_servers=kafka, var_dir=var_dir)
    seed_warehouse(settings.resolved_warehouse_path, accounts=30, days=365, seed=11)
    asyncio.run(ensure_topics(settings))
    local = LocalStack(settings, ports={name: free_port() for name in SERVICES}, env=env)
    local.start()
    try:
        asyncio.run(local.wait_ready(90))
        yield Stack(settings, local, var_dir)
    finally:
        local.stop()
