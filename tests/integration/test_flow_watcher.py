"""FlowWatcher (used by `revops trigger --wait` and `revops run`) trusts only flow outputs
signed by the execution agent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from contracts import AgentName, FlowOutput
from services.common.envelope_security import EnvelopeSecurity
from services.common.flows import FlowWatcher
from services.common.messages import encode, make_envelope
from services.common.records import Outgoing
from services.common.settings import Settings, TopicNames
from tests.integration.ingress.conftest import flow_output
from tests.kafka_tools import create_topics, produce, unique

pytestmark = pytest.mark.kafka


def _record(settings: Settings, request_id: str, signer: str | None) -> tuple[bytes, list]:
    flow = flow_output(request_id, "ACC-9", None)
    envelope = make_envelope(
        flow,
        request_id=request_id,
        flow_id=flow.flow_execution_id,
        correlation_id=request_id,
        source=AgentName.EXECUTION_AGENT.value,
        target=AgentName.FLOW_OUTPUT.value,
        stage="flow",
    )
    value = encode(envelope)
    if signer is None:
        return value, []
    out = Outgoing(settings.topics.flow_results, None, envelope, audience="flow_output")
    headers = EnvelopeSecurity(signer, settings).sign(out, value)
    return value, [(k, v.encode()) for k, v in headers.items()]


async def test_forged_and_garbled_flow_outputs_are_skipped(kafka, tmp_path) -> None:
    topics = TopicNames(flow_results=unique("t.flows"))
    await create_topics(kafka, [topics.flow_results])
    settings = Settings(kafka_bootstrap_servers=kafka, var_dir=tmp_path / "var", topics=topics)
    watcher = FlowWatcher(settings, from_beginning=True)
    await watcher.start()
    try:
        await produce(kafka, topics.flow_results, [b"not json at all"])
        for request_id, signer in (
            ("req-unsigned", None),
            ("req-by-webhook", AgentName.WEBHOOK_PROCESSOR.value),
            ("req-genuine", AgentName.EXECUTION_AGENT.value),
        ):
            value, headers = _record(settings, request_id, signer)
            await produce(kafka, topics.flow_results, [value], headers=headers)
        # One partition (same key), so everything before the genuine one was read by then.
        seen = [flow.request_id async for flow in _until(watcher, "req-genuine")]
    finally:
        await watcher.stop()
    assert seen == ["req-genuine"]
    assert watcher.rejected == 3


async def _until(watcher: FlowWatcher, request_id: str) -> AsyncIterator[FlowOutput]:
    async for flow in watcher.outputs(timeout_s=15):
        yield flow
        if flow.request_id == request_id:
            return
