"""Regression (found by the chaos run): a service restarted while the broker was down
(kill -9 during a broker restart) exited at start-up with a connection error, so nothing
consumed its topic any more. The runtime now waits for the broker and then starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from tests.kafka_broker import BROKER_START_TIMEOUT_S, JarBroker, free_port

# The broker's own start-up may take up to BROKER_START_TIMEOUT_S on a busy machine.
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(BROKER_START_TIMEOUT_S + 180)]


async def test_a_service_started_before_its_broker_comes_up_when_the_broker_does(
    tmp_path: Path,
) -> None:
    broker = JarBroker(free_port(), tmp_path / "kafka")
    settings = Settings(
        kafka_bootstrap_servers=broker.bootstrap,
        var_dir=tmp_path / "var",
        signing_enabled=False,
        retry_initial_delay_s=0.2,
        retry_max_delay_s=1.0,
    )
    runtime = ServiceRuntime("late_starter", settings, http_port=None)
    starting = asyncio.create_task(runtime.start())
    await asyncio.sleep(2.0)
    assert not starting.done(), "start() must wait for the broker, not fail"
    assert not await runtime.ready()
    await asyncio.to_thread(broker.up)  # BrokerStartError carries kafka.sh's output and log
    try:
        await asyncio.wait_for(starting, 120)
        assert await runtime.ready()
    finally:
        if starting.done() and starting.exception() is None:
            await runtime.stop()
        else:
            starting.cancel()
        await asyncio.to_thread(broker.down)
