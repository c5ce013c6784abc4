"""EnvelopeSecurity.verify_batch: the runtime's verification of a consumed batch answers per
record, accepts both kinds of signature, and leaves the unverified triggers topic alone."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from pydantic import BaseModel

from contracts import AgentName
from services.common.envelope_security import EnvelopeSecurity
from services.common.errors import PermanentError
from services.common.records import Outgoing, Record
from services.common.security.batch_signing import BatchEntry
from services.common.settings import Settings

DATA_AGENT = AgentName.DATA_AGENT.value
DECISION_AGENT = AgentName.DECISION_AGENT.value


class Echo(BaseModel):
    n: int
    id: str


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var")


def record(
    settings: Settings, offset: int, value: bytes, headers: dict[str, str], topic: str = ""
) -> Record:
    return Record(
        topic or settings.topics.datasets,
        0,
        offset,
        b"acc",
        value,
        tuple((k, v.encode()) for k, v in headers.items()),
        int(time.time() * 1000),
    )


def test_a_batch_of_both_kinds_is_verified_per_record(settings: Settings) -> None:
    producer = EnvelopeSecurity(DATA_AGENT, settings)
    consumer = EnvelopeSecurity(DECISION_AGENT, settings)
    topic = settings.topics.datasets
    values = [orjson.dumps({"n": i, "id": f"r{i}"}) for i in range(4)]
    content = {"content-type": "application/json"}
    batch = producer.sign_batch(
        [BatchEntry(DECISION_AGENT, topic, 0, b"acc", v, content) for v in values[:3]]
    )
    per_record = producer.sign(Outgoing(topic, "acc", Echo(n=3, id="r3")), values[3])
    records = [record(settings, i, values[i], {**content, **batch[i]}) for i in range(3)]
    records[1] = record(settings, 1, b'{"n": 100, "id": "r1"}', {**content, **batch[1]})
    records.append(record(settings, 3, values[3], {**content, **per_record}))
    records.append(record(settings, 4, b"raw", {}, topic=settings.topics.triggers))
    records.append(record(settings, 5, values[0], content))  # no signature at all

    answers = consumer.verify_batch(records)

    assert [a is None for a in answers] == [True, False, True, True, True, False]
    assert isinstance(answers[1], PermanentError)
    assert answers[1].code == "AUTHENTICATION_FAILED_PAYLOAD_MISMATCH"
    assert isinstance(answers[5], PermanentError)
    assert answers[5].code == "AUTHENTICATION_FAILED_MISSING_TOKEN"
    # The same batch at other offsets: every record id was already accepted.
    moved = [record(settings, 10 + i, values[i], {**content, **batch[i]}) for i in range(0, 3, 2)]
    codes = [getattr(a, "code", None) for a in consumer.verify_batch(moved)]
    assert codes == ["AUTHENTICATION_FAILED_REPLAYED"] * 2
    # verify (one record) raises what verify_batch answers.
    with pytest.raises(PermanentError) as refused:
        consumer.verify(records[1])
    assert refused.value.code == "AUTHENTICATION_FAILED_PAYLOAD_MISMATCH"


def test_audience_and_signing_mode_follow_the_settings(settings: Settings) -> None:
    security = EnvelopeSecurity(DATA_AGENT, settings)
    assert security.batch_signing  # the default
    assert security.audience_of(Outgoing(settings.topics.datasets, "k", Echo(n=1, id="a"))) == (
        DECISION_AGENT
    )
    assert security.audience_of(Outgoing("elsewhere", "k", Echo(n=1, id="a"))) is None
    per_record = EnvelopeSecurity(
        DATA_AGENT, settings.model_copy(update={"signing_mode": "record"})
    )
    assert not per_record.batch_signing
