"""Fuzzing the parsers and verifiers every consumed record meets (hypothesis).

Two properties for each: nothing but `PermanentError` (the runtime's "dead-letter it") ever
escapes, and nothing invalid is accepted: a record a parser accepts is a contract-valid
envelope addressed to that service whose payload validates as the service's model (checked
independently of the parser), and the verifier accepts only a genuinely signed record.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from contracts import (
    SUPPORTED_VERSIONS,
    ActionJob,
    ActionResult,
    AgentName,
    AnalysisResults,
    AnalyticalDataset,
    Envelope,
    RawTrigger,
)
from contracts.actions import ActionStatus, ActionType, Channel
from contracts.common import AnalysisType, Subject
from contracts.dataset import Account, BillingEvent, DataCollection, Dataset, UsageDay
from contracts.dataset_columns import ColumnarAnalyticalDataset, to_columnar
from contracts.series import USAGE_METRICS
from services.common.envelope_security import EnvelopeSecurity
from services.common.errors import PermanentError
from services.common.messages import encode, envelope_parser, make_envelope
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import _safe_records
from services.common.security import AUTH_HEADER
from services.common.settings import Settings
from services.data_agent.app import parse_trigger
from services.decision_agent.app import parse_dataset
from services.webhook_processor.app import parse_job

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

EXECUTION = AgentName.EXECUTION_AGENT.value
Parser = Callable[[Record], Parsed]
Models = tuple[type[BaseModel], ...]  # a payload is valid when one of them validates it

# (parser, the service it belongs to, the payload model it must enforce)
ENVELOPE_CONSUMERS: dict[str, tuple[Parser, str, Models]] = {
    # either form of dataset: rows (schema_version 1) or columns (2)
    "decision_agent<-datasets": (
        parse_dataset,
        "decision_agent",
        (AnalyticalDataset, ColumnarAnalyticalDataset),
    ),
    "execution_agent<-decisions": (
        envelope_parser(AnalysisResults, EXECUTION),
        EXECUTION,
        (AnalysisResults,),
    ),
    "execution_agent<-action-results": (
        envelope_parser(ActionResult, EXECUTION),
        EXECUTION,
        (ActionResult,),
    ),
    "webhook_processor<-actions": (parse_job, "webhook_processor", (ActionJob,)),
}

JOB = ActionJob(
    action_id="a-1",
    request_id="req-1",
    based_on="rec-1",
    type=ActionType.NOTIFICATION,
    channel=Channel.SLACK,
    destination="slack_revops_alerts",
    template="deal_alert",
    account_id="acc-1",
    context={"score": 42},
)
RESULT = ActionResult(
    action_id="a-1",
    request_id="req-1",
    based_on="rec-1",
    type=ActionType.NOTIFICATION,
    channel=Channel.SLACK,
    destination="slack_revops_alerts",
    target="slack",
    status=ActionStatus.SUCCESS,
)
DATASET = to_columnar(
    AnalyticalDataset(
        request_id="req-1",
        analysis_type=AnalysisType.CONSUMPTION,
        subject=Subject(account_id="acc-1"),
        data_collection=DataCollection(),
        dataset=Dataset(
            account=Account(sf_account_id="acc-1", sf_account_name="Acme"),
            usage=[
                UsageDay(usage_date=date(2026, 1, 1), query_count=3, cost_usd=1.5),
                UsageDay(usage_date=date(2026, 1, 3), query_count=4),
            ],
            billing=[BillingEvent(event_date=date(2026, 1, 2), amount_usd=10.0)],
            as_of=date(2026, 1, 3),
        ),
    )
)
VALID_PAYLOADS: dict[str, BaseModel] = {
    "webhook_processor<-actions": JOB,
    "execution_agent<-action-results": RESULT,
    "decision_agent<-datasets": DATASET,
}
#: The numbers of a dataset's series are trusted, not re-validated, by the decision agent
#: (the data agent validated them, the signature covers them; docs/dataset-wire-format.md):
#: it reads "1.5" or true there as a number where the model refuses them, so mutations
#: stop at the arrays' owner (the shape checks: lengths, days, start, unknown fields).
SERIES_NUMBERS = {("usage", m) for m in USAGE_METRICS} | {("billing", "amount_usd")}


def mutable(path: tuple[Any, ...]) -> bool:
    return not any(tuple(path[i : i + 2]) in SERIES_NUMBERS for i in range(len(path)))


TRIGGER = {
    "trigger_type": "manual",
    "parameters": {
        "account_id": "acc-1",
        "opportunity_id": "opp-1",
        "analysis_type": "deal_quality",
    },
    "request_id": "req-1",
}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["", "\x00", "' OR 1=1 --", "deal_quality", "manual", "req-1", "9" * 40])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=15,
)


def dumps(value: Any) -> bytes:
    """stdlib JSON: unlike orjson it writes any int (and NaN/Infinity), as a careless or
    hostile producer might."""
    return json.dumps(value).encode()


def envelope_json(payload: BaseModel, target: str) -> dict[str, Any]:
    envelope = make_envelope(
        payload,
        request_id="req-1",
        flow_id="flow-1",
        correlation_id="req-1",
        source="fuzz",
        target=target,
        stage="fuzz",
    )
    return orjson.loads(encode(envelope))


def paths(tree: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every location in a JSON tree (dict keys and list indexes)."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from paths(value, (*prefix, index))


def mutate(tree: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    if not path:
        return new
    tree = copy.deepcopy(tree)
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return tree


def record(value: bytes | None, topic: str = "t", headers: tuple[Any, ...] = ()) -> Record:
    return Record(topic, 0, 7, b"k", value, headers, int(time.time() * 1000))


def accepted_is_valid(raw: bytes, target: str, models: Models) -> bool:
    """The oracle, written without the parser: would this record be a valid message?"""
    try:
        data = orjson.loads(raw)
        envelope = Envelope.model_validate(data)
    except (orjson.JSONDecodeError, ValidationError):
        return False
    if not any(_validates(model, envelope.payload) for model in models):
        return False
    version = data["metadata"].get("version")
    return envelope.metadata.target_agent == target and (
        version is None or version in SUPPORTED_VERSIONS
    )


def _validates(model: type[BaseModel], payload: Any) -> bool:
    try:
        model.model_validate(payload)
    except ValidationError:
        return False
    return True


def check_parser(parse: Parser, target: str, model: Models, raw: bytes) -> None:
    try:
        parsed = parse(record(raw))
    except PermanentError as exc:
        assert exc.code and not exc.retryable
        assert not accepted_is_valid(raw, target, model)
        return
    assert accepted_is_valid(raw, target, model), "an invalid message was accepted"
    assert isinstance(parsed.body, model)
    assert parsed.idempotency_key == parsed.envelope.metadata.idempotency_key


@pytest.mark.parametrize("consumer", sorted(ENVELOPE_CONSUMERS))
@FUZZ
@given(raw=st.binary(max_size=200) | json_values.map(dumps))
def test_random_bytes_and_json_are_dead_lettered(consumer: str, raw: bytes) -> None:
    parse, target, model = ENVELOPE_CONSUMERS[consumer]
    check_parser(parse, target, model, raw)


@pytest.mark.parametrize("consumer", sorted(ENVELOPE_CONSUMERS))
@FUZZ
@given(payload=st.dictionaries(st.text(max_size=12), json_values, max_size=6), data=st.data())
def test_envelopes_with_random_payloads(consumer: str, payload: dict[str, Any], data: Any) -> None:
    parse, target, model = ENVELOPE_CONSUMERS[consumer]
    envelope = envelope_json(JOB, data.draw(st.sampled_from([target, "someone_else"])))
    envelope["payload"] = payload
    check_parser(parse, target, model, dumps(envelope))


@pytest.mark.parametrize("consumer", sorted(VALID_PAYLOADS))
@FUZZ
@given(data=st.data(), new=json_values, delete=st.booleans())
def test_mutated_valid_envelopes(consumer: str, data: Any, new: Any, delete: bool) -> None:
    """One field of a valid envelope replaced or removed: accepted only if still valid."""
    parse, target, model = ENVELOPE_CONSUMERS[consumer]
    base = envelope_json(VALID_PAYLOADS[consumer], target)
    check_parser(parse, target, model, encode_valid_base(parse, base))
    path = data.draw(st.sampled_from([p for p in paths(base) if mutable(p)]))
    check_parser(parse, target, model, dumps(mutate(base, path, new, delete)))


def encode_valid_base(parse: Parser, base: dict[str, Any]) -> bytes:
    raw = dumps(base)
    parse(record(raw))  # the unmutated envelope is accepted (else the test proves nothing)
    return raw


@FUZZ
@given(raw=st.binary(max_size=200) | json_values.map(dumps), data=st.data())
def test_raw_triggers(raw: bytes, data: Any) -> None:
    if data.draw(st.booleans()):  # a valid trigger with one field replaced or removed
        path = data.draw(st.sampled_from(list(paths(TRIGGER))))
        raw = dumps(mutate(TRIGGER, path, data.draw(json_values), data.draw(st.booleans())))
    try:
        parsed = parse_trigger(record(raw))
    except PermanentError as exc:
        assert exc.code in {"INVALID_JSON", "INVALID_TRIGGER"}
        with pytest.raises((orjson.JSONDecodeError, ValidationError)):
            RawTrigger.model_validate(orjson.loads(raw))
        return
    trigger, request_id = parsed.body
    assert trigger == RawTrigger.model_validate(orjson.loads(raw))
    assert parsed.idempotency_key == f"trigger:{request_id}"


# --- Kafka headers and the envelope verifier -----------------------------------------------


@pytest.fixture(scope="module")
def security(tmp_path_factory: pytest.TempPathFactory) -> tuple[EnvelopeSecurity, Settings]:
    var = tmp_path_factory.mktemp("fuzz-security")
    settings_ = Settings(var_dir=var)
    return EnvelopeSecurity("decision_agent", settings_), settings_


def genuine(var: Path, settings_: Settings, value: bytes) -> dict[str, str]:
    producer = EnvelopeSecurity("data_agent", settings_)
    out = Outgoing(settings_.topics.datasets, "k", RESULT, audience="decision_agent")
    return producer.sign(out, value)


header_names = st.sampled_from([AUTH_HEADER, "content-type", "revops-dlq-code", "x"]) | st.text(
    max_size=10
)
header_values = (
    st.binary(max_size=80)
    | st.sampled_from([b"", b"eyJ", b"\xff\xfe", b"a.b.c", b"eyJhbGciOiJub25lIn0.e30."])
    | st.text(max_size=60).map(str.encode)
)
headers_strategy = st.lists(st.tuples(header_names, header_values), max_size=4).map(tuple)


@FUZZ
@given(
    headers=headers_strategy,
    value=st.binary(max_size=120),
    timestamp=st.none() | st.integers(min_value=-(2**40), max_value=2**45),
)
def test_verifier_with_random_headers_only_dead_letters(
    security: tuple[EnvelopeSecurity, Settings],
    headers: tuple[tuple[str, bytes], ...],
    value: bytes,
    timestamp: int | None,
) -> None:
    verifier, settings_ = security
    rec = Record(settings_.topics.datasets, 0, 1, b"k", value, headers, timestamp)
    with pytest.raises(PermanentError) as exc:
        verifier.verify(rec)
    assert exc.value.code.startswith("AUTHENTICATION_FAILED_")


@FUZZ
@given(extra=headers_strategy, flip=st.integers(min_value=0, max_value=10_000), data=st.data())
def test_a_genuine_record_with_any_byte_changed_is_refused(
    security: tuple[EnvelopeSecurity, Settings],
    extra: tuple[tuple[str, bytes], ...],
    flip: int,
    data: Any,
) -> None:
    verifier, settings_ = security
    value = orjson.dumps(envelope_json(RESULT, "decision_agent"))
    token = genuine(settings_.var_dir, settings_, value)[AUTH_HEADER].encode()
    topic = settings_.topics.datasets
    now_ms = int(time.time() * 1000)
    if data.draw(st.booleans()):
        changed = bytearray(value)
        changed[flip % len(changed)] ^= 1 + data.draw(st.integers(0, 254))
        rec = Record(topic, 0, flip, b"k", bytes(changed), ((AUTH_HEADER, token), *extra), now_ms)
    else:
        bad = bytearray(token)
        bad[flip % len(bad)] ^= 1 + data.draw(st.integers(0, 254))
        rec = Record(topic, 0, flip, b"k", value, ((AUTH_HEADER, bytes(bad)), *extra), now_ms)
    with pytest.raises(PermanentError) as exc:
        verifier.verify(rec)
    assert exc.value.code.startswith("AUTHENTICATION_FAILED_")
    # The untouched record, first in its header list, passes (the refusal was the change).
    verifier.verify(Record(topic, 1, flip, b"k", value, ((AUTH_HEADER, token),), now_ms))


@FUZZ
@given(headers=st.lists(st.tuples(st.text(max_size=8), st.binary(max_size=40)), max_size=5))
def test_undecodable_headers_never_wedge_a_batch(headers: list[tuple[str, bytes]]) -> None:
    from aiokafka.structs import ConsumerRecord

    raw = ConsumerRecord("t", 0, 0, 0, 0, b"k", b"v", None, 1, 1, tuple(headers))
    [safe] = _safe_records((raw,))
    for _, v in safe.headers:
        v.decode("utf-8")  # FastStream can decode every header now
    assert len(safe.headers) == len(headers)
