"""End to end: a record fails into the DLQ, a replay makes its effect happen exactly once,
and a forced second replay is skipped by the runtime as a duplicate."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from pydantic import BaseModel

from services.common.errors import PermanentError
from services.common.messages import decode_json
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from tests.integration.dlq.conftest import Cli
from tests.kafka_tools import collect, create_topics, produce, unique

pytestmark = pytest.mark.kafka


class Job(BaseModel):
    id: str
    amount: int


def parse_job(record: Record) -> Parsed:
    job = Job.model_validate(decode_json(record.value))
    return Parsed(idempotency_key=f"job:{job.id}", body=job)


async def wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_replayed_record_has_its_effect_exactly_once(kafka, tmp_path, cli: Cli):
    src, out = unique("t.jobs"), unique("t.effects")
    await create_topics(kafka, [src, out, f"{src}.dlq"], partitions=1)
    settings = Settings(
        kafka_bootstrap_servers=kafka, state_dir=tmp_path / "runtime-state", signing_enabled=False
    )
    runtime = ServiceRuntime("replayee", settings, http_port=None)
    calls: list[str] = []
    broken = True  # the downstream is broken until the operator fixes it

    async def handle(item: Parsed, record: Record) -> list[Outgoing]:
        calls.append(item.body.id)
        if broken:
            raise PermanentError("downstream refused the job", code="DOWNSTREAM_REFUSED")
        return [Outgoing(out, item.body.id, item.body)]

    runtime.subscribe(src, parse_job, handle)
    await runtime.start()
    try:
        await produce(kafka, src, [{"id": "j1", "amount": 5}], key=b"acct-1")
        dead = await collect(kafka, f"{src}.dlq", 1)
        assert orjson.loads(dead[0].value)["error"]["code"] == "DOWNSTREAM_REFUSED"
        assert calls == ["j1"]

        broken = False
        replayed = await cli("replay", "--topic", src, "--code", "DOWNSTREAM_REFUSED")
        assert "1 replayed" in replayed.output, replayed.output
        effects = await collect(kafka, out, 1)
        assert [orjson.loads(r.value) for r in effects] == [{"id": "j1", "amount": 5}]
        assert calls == ["j1", "j1"]

        forced = await cli("replay", "--topic", src, "--force")
        assert "1 replayed" in forced.output
        # The runtime reads the forced copy and skips it: same idempotency key, already done.
        await collect(kafka, src, 3)  # original + two replays are on the topic
        await asyncio.sleep(1.5)
        assert calls == ["j1", "j1"]
        assert len(await collect(kafka, out, 2, timeout_s=2)) == 1
    finally:
        await runtime.stop()
