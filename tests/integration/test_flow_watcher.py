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
from services.common.security.batch_signing import BatchEntry
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


async def test_batch_signed_flow_outputs_are_read_and_a_tampered_one_is_skipped(
    kafka, tmp_path
) -> None:
    """Flow outputs the execution agent signed as one batch (REVOPS_SIGNING_MODE=batch):
    the watcher verifies them together and refuses the altered one alone."""
    topics = TopicNames(flow_results=unique("t.flows"))
    await create_topics(kafka, [topics.flow_results], partitions=1)
    settings = Settings(kafka_bootstrap_servers=kafka, var_dir=tmp_path / "var", topics=topics)
    request_ids = [f"req-batch-{i}" for i in range(3)]
    values = [_record(settings, request_id, None)[0] for request_id in request_ids]
    content = {"content-type": "application/json"}
    signed = EnvelopeSecurity(AgentName.EXECUTION_AGENT.value, settings).sign_batch(
        [
            BatchEntry(AgentName.FLOW_OUTPUT.value, topics.flow_results, 0, b"k", value, content)
            for value in values
        ]
    )
    watcher = FlowWatcher(settings, from_beginning=True)
    await watcher.start()
    try:
        for i, (value, headers) in enumerate(zip(values, signed, strict=True)):
            if i == 1:
                value = value.replace(b"req-batch-1", b"req-batch-X")
            encoded = [(k, v.encode()) for k, v in {**content, **headers}.items()]
            await produce(kafka, topics.flow_results, [value], headers=encoded)
        seen = [flow.request_id async for flow in _until(watcher, "req-batch-2")]
    finally:
        await watcher.stop()
    assert seen == ["req-batch-0", "req-batch-2"]
    assert watcher.rejected == 1
