"""The broker goes away under running services (a restart, an outage):
- an ingress POST answers 503 with Retry-After within a bounded time instead of hanging;
- a consuming service keeps its stderr JSON, with library errors rate-limited (before: tens
  of plain-text `ERROR:aiokafka` lines a second)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from services.common.settings import Settings
from services.common.topics import ensure_topics
from services.ingress.app import build_runtime
from tests.kafka_broker import BROKER_START_TIMEOUT_S, JarBroker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(BROKER_START_TIMEOUT_S + 300)]

TOKEN = "outage-token-0123456789"
OUTAGE_S = 15.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[JarBroker]:
    broker = JarBroker(free_port(), tmp_path / "kafka")
    broker.up()
    try:
        yield broker
    finally:
        broker.down()


async def wait_ready(port: int, proc: asyncio.subprocess.Process, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "the service exited"
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"not ready in {timeout_s} s")


async def test_ingress_answers_503_and_a_service_logs_json_while_kafka_is_down(
    broker: JarBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap, var_dir=tmp_path / "var")
    await ensure_topics(settings)
    port = free_port()
    stderr_path = tmp_path / "decision_agent.stderr"
    env = {
        **os.environ,
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "REVOPS_VAR_DIR": str(tmp_path / "var"),
        "REVOPS_HTTP_PORT": str(port),
    }
    with stderr_path.open("wb") as stderr:
        service = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.decision_agent", env=env, stderr=stderr
        )
    monkeypatch.setenv("REVOPS_SECRETS_BACKEND", "env")
    monkeypatch.setenv("REVOPS_SECRET_INGRESS_TOKENS", TOKEN)
    ingress = await build_runtime(settings, 0)
    await ingress.start()
    trigger = {
        "trigger_type": "manual",
        "parameters": {"account_id": "001000000000001", "analysis_type": "consumption"},
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        await wait_ready(port, service)
        base = f"http://127.0.0.1:{ingress.http_port}"
        # Generous client timeout: the ingress itself must answer well inside it.
        async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
            assert (
                await client.post("/v1/triggers", json=trigger, headers=headers)
            ).status_code == 202
            await asyncio.to_thread(broker.down)
            refused = await client.post("/v1/triggers", json=trigger, headers=headers)
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) > 0
            assert refused.json()["code"] == "kafka"
            await asyncio.sleep(OUTAGE_S)  # the decision agent's consumer keeps reconnecting
    finally:
        service.terminate()
        await asyncio.wait_for(service.wait(), 60)  # a bounded stop, also with Kafka down
        await ingress.stop()

    lines = [line for line in stderr_path.read_bytes().splitlines() if line.strip()]
    records = [orjson.loads(line) for line in lines]  # every line is JSON
    library = [r for r in records if str(r.get("logger", "")).startswith("aiokafka")]
    assert library, "the outage was not logged at all"
    # One line per message template and logger per 30 s: for the ~35 s from the outage to
    # the end of the stop that is at most two per template (about ten templates), where
    # the unfiltered library wrote thousands.
    assert len(library) <= 50, [r["event"] for r in library]
    assert all(r["service"] == "decision_agent" for r in records)
