"""An ingress on unique topics against the real broker, plus a fake execution agent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import AgentName, AnalysisType, FlowOutput, Subject
from contracts.execution import (
    ExecutionBody,
    ExecutionResults,
    ExecutionSummary,
    PersistentStorage,
    ResultsLocation,
)
from services.common.envelope_security import EnvelopeSecurity
from services.common.ids import flow_id_for
from services.common.messages import encode, make_envelope
from services.common.records import Outgoing
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings, TopicNames
from services.ingress.app import build_runtime
from services.ingress.config import IngressSettings
from tests.kafka_tools import create_topics, unique

TOKENS = "tok-old-0123456789, tok-new-9876543210"
HMAC_SECRET = "hmac-secret-abcdef0123456789"
MAX_BODY = 4096


@dataclass
class Ingress:
    runtime: ServiceRuntime
    settings: Settings
    client: httpx.AsyncClient
    kafka: str


@pytest.fixture
def signing_mode() -> str:
    """How the ingress signs what it publishes: the default; a test parametrizes it."""
    return str(Settings.model_fields["signing_mode"].default)


@pytest.fixture
async def ingress(kafka, tmp_path, monkeypatch, signing_mode) -> AsyncIterator[Ingress]:
    monkeypatch.setenv("REVOPS_SECRETS_BACKEND", "env")
    monkeypatch.setenv("REVOPS_SECRET_INGRESS_TOKENS", TOKENS)
    monkeypatch.setenv("REVOPS_SECRET_INGRESS_HMAC_SECRETS", HMAC_SECRET)
    topics = TopicNames(triggers=unique("t.triggers"), flow_results=unique("t.flows"))
    # The triggers' DLQ exists before the ingress starts: its follower reads it from the
    # start (rejected requests), as it does on a cluster where every topic was created.
    await create_topics(
        kafka, [topics.triggers, f"{topics.triggers}.dlq", topics.flow_results], partitions=2
    )
    settings = Settings(
        kafka_bootstrap_servers=kafka,
        var_dir=tmp_path / "var",
        topics=topics,
        signing_mode=signing_mode,
    )
    runtime = await build_runtime(settings, 0, IngressSettings(max_body_bytes=MAX_BODY))
    await runtime.start()
    base = f"http://127.0.0.1:{runtime.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        try:
            yield Ingress(runtime, settings, client, kafka)
        finally:
            await runtime.stop()


def flow_output(request_id: str, account_id: str, opportunity_id: str | None) -> FlowOutput:
    return FlowOutput(
        flow_execution_id=flow_id_for(request_id),
        request_id=request_id,
        status="success",
        execution_time_ms=42,
        summary=f"reviewed {account_id}",
        results_location=ResultsLocation(database="revops", table="insights", query="select 1"),
        analysis_type=AnalysisType.DEAL_QUALITY,
        subject=Subject(account_id=account_id, opportunity_id=opportunity_id),
        scores={"deal_health": 71},
        execution=ExecutionResults(
            request_id=request_id,
            execution_results=ExecutionBody(
                status="complete",
                persistent_storage=PersistentStorage(
                    database="revops", table="executions", record_id=f"exec-{request_id}"
                ),
            ),
            summary=ExecutionSummary(),
        ),
    )


@contextlib.asynccontextmanager
async def fake_execution_agent(
    settings: Settings, *, signer: str | None = AgentName.EXECUTION_AGENT.value
) -> AsyncIterator[list[dict]]:
    """Answers every trigger on the triggers topic with a FlowOutput envelope, signed as
    `signer` would sign it (None: unsigned, as a forger without a key would send it)."""
    seen: list[dict] = []
    security = EnvelopeSecurity(signer, settings) if signer else None
    consumer = AIOKafkaConsumer(
        settings.topics.triggers,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await consumer.start()
    await producer.start()

    async def run() -> None:
        async for record in consumer:
            trigger = orjson.loads(record.value)
            seen.append(trigger)
            params = trigger["parameters"]
            flow = flow_output(
                trigger["request_id"], params["account_id"], params["opportunity_id"]
            )
            envelope = make_envelope(
                flow,
                request_id=flow.request_id,
                flow_id=flow.flow_execution_id,
                correlation_id=flow.request_id,
                source=AgentName.EXECUTION_AGENT.value,
                target=AgentName.FLOW_OUTPUT.value,
                stage="flow_output",
            )
            value = encode(envelope)
            out = Outgoing(
                settings.topics.flow_results, None, envelope, audience=AgentName.FLOW_OUTPUT.value
            )
            headers = security.sign(out, value) if security else {}
            await producer.send_and_wait(
                settings.topics.flow_results,
                value,
                key=record.key,
                headers=[(k, v.encode()) for k, v in headers.items()],
            )

    task = asyncio.create_task(run())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()
        await producer.stop()
