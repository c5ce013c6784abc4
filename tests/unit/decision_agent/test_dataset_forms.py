"""The decision agent reads both dataset forms: the analysis of a dataset is the same, field
for field, whether it arrives as rows (published before the upgrade) or as columns; what it
cannot read is dead-lettered with a reason."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from contracts import AgentName, AnalysisType, AnalyticalDataset
from contracts.dataset_columns import ColumnarAnalyticalDataset, to_columnar
from demo.datasets import demo_messages
from services.common.errors import PermanentError
from services.common.messages import encode, make_envelope
from services.common.records import Record
from services.common.settings import Settings
from services.decision_agent.app import DecisionAgent, build_agent, parse_dataset

TARGET = AgentName.DECISION_AGENT.value


@pytest.fixture(scope="module")
def messages(tmp_path_factory: pytest.TempPathFactory) -> list[AnalyticalDataset]:
    return demo_messages(tmp_path_factory.mktemp("forms-demo"))


@pytest.fixture(scope="module")
def agent() -> DecisionAgent:
    agent = build_agent(Settings())
    assert agent.ai is None  # deterministic analysis only
    return agent


def record_of(payload: AnalyticalDataset | ColumnarAnalyticalDataset) -> Record:
    envelope = make_envelope(
        payload,
        request_id=payload.request_id,
        flow_id="flow-1",
        correlation_id=payload.request_id,
        source=AgentName.DATA_AGENT.value,
        target=TARGET,
        stage="dataset",
    )
    return Record("revops.datasets", 0, 1, b"k", encode(envelope), (), int(time.time() * 1000))


def test_analysis_is_identical_from_rows_and_from_columns(
    agent: DecisionAgent, messages: list[AnalyticalDataset]
) -> None:
    kinds = set()
    for message in messages:
        from_rows = agent.decide(parse_dataset(record_of(message)).body)
        from_columns = agent.decide(parse_dataset(record_of(to_columnar(message))).body)
        assert from_columns.model_dump(mode="json") == from_rows.model_dump(mode="json")
        kinds.add(message.analysis_type)
        # the analysis read the usage: the consumption scores exist
        if message.analysis_type is AnalysisType.CONSUMPTION:
            assert "customer_health" in from_columns.analysis_results.scores
    assert kinds == {AnalysisType.CONSUMPTION, AnalysisType.RENEWAL_RISK, AnalysisType.DEAL_QUALITY}


def test_flags_of_the_demo_fleet_are_not_empty(
    agent: DecisionAgent, messages: list[AnalyticalDataset]
) -> None:
    """The equality above compares real findings, not empty results."""
    results = [agent.decide(parse_dataset(record_of(to_columnar(m))).body) for m in messages]
    flags = [flag for result in results for flag in result.analysis_results.flags]
    assert len(flags) >= 5


def tampered(message: AnalyticalDataset, **changes: Any) -> Record:
    good = record_of(to_columnar(message))
    envelope = orjson.loads(good.value or b"")
    envelope["payload"].update(changes)
    return Record(good.topic, 0, 2, b"k", orjson.dumps(envelope), (), good.timestamp_ms)


def test_unknown_version_is_dead_lettered_with_its_reason(
    messages: list[AnalyticalDataset],
) -> None:
    with pytest.raises(PermanentError) as caught:
        parse_dataset(tampered(messages[0], schema_version=3))
    assert caught.value.code == "UNSUPPORTED_DATASET_VERSION" and not caught.value.retryable
    assert "schema_version 3 is not supported (supported: 1, 2)" in caught.value.message


def test_badly_shaped_series_is_dead_lettered_with_its_reason(
    messages: list[AnalyticalDataset],
) -> None:
    message = next(m for m in messages if m.dataset.usage)
    wire = orjson.loads(encode(to_columnar(message)))
    wire["dataset"]["usage"]["cost_usd"].append(1.0)
    with pytest.raises(PermanentError) as caught:
        parse_dataset(tampered(message, dataset=wire["dataset"]))
    assert caught.value.code == "INVALID_DATASET" and not caught.value.retryable
    assert "dataset.usage.cost_usd has" in caught.value.message


def test_invalid_entities_are_dead_lettered_naming_the_field(
    messages: list[AnalyticalDataset],
) -> None:
    wire = orjson.loads(encode(to_columnar(messages[0])))
    wire["dataset"]["account"]["sf_account_name"] = None
    with pytest.raises(PermanentError) as caught:
        parse_dataset(tampered(messages[0], dataset=wire["dataset"]))
    assert caught.value.code == "INVALID_PAYLOAD"
    assert "dataset.account.sf_account_name" in caught.value.details
