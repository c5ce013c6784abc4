"""The decision agent's batch handler: on the generated demo warehouse, the decisions of a
consumed batch (consumption datasets analysed together) are the decisions made record by
record, field for field; a record that cannot be analysed fails alone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts import AgentName, AnalysisType, AnalyticalDataset
from contracts.dataset_columns import ColumnarAnalyticalDataset, to_columnar
from demo.datasets import demo_messages
from services.common.errors import PermanentError
from services.common.messages import encode, make_envelope
from services.common.records import BatchOutcome, Parsed, Record
from services.common.settings import Settings
from services.decision_agent.app import DecisionAgent, build_agent, build_runtime, parse_dataset
from tests.unit.decision_agent.same_fields import assert_same_fields


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[Record]:
    """The dataset records of 24 accounts (consumption, renewal risk) and 12 open deals."""
    messages = demo_messages(tmp_path_factory.mktemp("batch-demo"), accounts=24)
    return [_record(to_columnar(m), offset) for offset, m in enumerate(messages)]


@pytest.fixture(scope="module")
def agent() -> DecisionAgent:
    agent = build_agent(Settings())
    assert agent.ai is None  # deterministic analysis only
    return agent


def _record(message: AnalyticalDataset | ColumnarAnalyticalDataset, offset: int) -> Record:
    envelope = make_envelope(
        message,
        request_id=message.request_id,
        flow_id=f"flow-{offset}",
        correlation_id=f"corr-{offset}",
        source=AgentName.DATA_AGENT.value,
        target=AgentName.DECISION_AGENT.value,
        stage="dataset",
    )
    key = message.subject.account_id.encode()
    return Record("revops.datasets", 0, offset, key, encode(envelope), (), int(time.time() * 1000))


def _decision(outcome: BatchOutcome) -> dict[str, Any]:
    """The decision record as the next stage reads it, less its creation time."""
    assert isinstance(outcome, list) and len(outcome) == 1, outcome
    out = outcome[0]
    envelope = orjson.loads(encode(out.message))
    del envelope["metadata"]["timestamp"]
    return {"key": out.key, "topic": out.topic, "audience": out.audience, **envelope}


def _one_by_one(agent: DecisionAgent, records: list[Record]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return [_decision(await agent.handle(parse_dataset(r), r)) for r in records]

    return asyncio.run(run())


def _batch(agent: DecisionAgent, records: list[Record]) -> list[BatchOutcome]:
    pairs: list[tuple[Parsed, Record]] = [(parse_dataset(r), r) for r in records]
    return asyncio.run(agent.handle_batch(pairs))


@pytest.mark.parametrize("size", [0, 7], ids=["one batch", "groups of 7"])
def test_batch_decisions_equal_record_by_record(
    agent: DecisionAgent, records: list[Record], size: int
) -> None:
    size = size or len(records)
    alone = _one_by_one(agent, records)
    together = []
    for start in range(0, len(records), size):
        together += [_decision(o) for o in _batch(agent, records[start : start + size])]
    assert len(together) == len(alone) == len(records)
    for one, batched in zip(alone, together, strict=True):
        assert_same_fields(one, batched)
    # the comparison covers real findings of every analysis, usage anomaly events included
    payloads = [d["payload"] for d in alone]
    kinds = {p["analysis_type"] for p in payloads}
    assert kinds == {"consumption", "renewal_risk", "deal_quality"}
    flags = [f for p in payloads for f in p["analysis_results"]["flags"]]
    assert any(f["code"] == "usage_anomaly" and f["event_id"] for f in flags)
    assert len({f["code"] for f in flags}) >= 6


def test_a_record_without_an_analysis_fails_alone(
    agent: DecisionAgent, records: list[Record]
) -> None:
    """A renewal-risk record to an agent without that analysis: its batch answer is the
    error `handle` raises (the runtime then dead-letters it); the others are decided."""
    analyzers = dict(agent.analyzers)
    del analyzers[AnalysisType.RENEWAL_RISK]
    partial = DecisionAgent(agent.settings, analyzers)
    outcomes = _batch(partial, records)
    refused = 0
    for record, outcome in zip(records, outcomes, strict=True):
        if b'"analysis_type":"renewal_risk"' in (record.value or b""):
            assert isinstance(outcome, PermanentError) and outcome.code == "UNKNOWN_ANALYSIS"
            with pytest.raises(PermanentError, match="no analysis for"):
                asyncio.run(partial.handle(parse_dataset(record), record))
            refused += 1
        else:
            assert_same_fields(_one_by_one(agent, [record])[0], _decision(outcome))
    assert 0 < refused < len(records)


def test_the_service_hands_batches_to_the_agent_only_without_a_model(tmp_path: Path) -> None:
    """With a model each record's calls take seconds: its decision must not wait for the
    rest of its group's."""
    recordings = tmp_path / "recordings.jsonl"
    recordings.write_text("")
    plain = Settings(var_dir=tmp_path / "plain")
    model = Settings(
        var_dir=tmp_path / "model", model_backend="recorded", model_recordings=recordings
    )
    without_model = asyncio.run(build_runtime(plain, None))
    with_model = asyncio.run(build_runtime(model, None))
    assert without_model.subscriptions[plain.topics.datasets].handle_batch is not None
    assert with_model.subscriptions[model.topics.datasets].handle_batch is None
