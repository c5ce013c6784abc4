"""Attacks at the Kafka level, end to end: forged, misaddressed, altered, expired and replayed
records on the datasets topic are dead-lettered with `AUTHENTICATION_FAILED_*` codes and never
produce a decision, while genuine records keep flowing; webhooks pointed at 127.0.0.1 or the
cloud metadata address are dead-lettered with `egress_*` codes and never called."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from contracts import AgentName
from contracts.actions import ActionJob, ActionType, Channel
from services.common.security import AUTH_HEADER
from services.common.security.batch_signing import (
    BATCH_PROOF_HEADER,
    BATCH_TOKEN_HEADER,
    BatchSigner,
)
from tests.kafka_tools import collect
from tests.security.conftest import SecureStack, running_secure_stack
from tests.security.pipeline import (
    batch_signed,
    dead_letters,
    deal_trigger,
    foreign_signer,
    genuine_signer,
    job_envelope,
    kid_of,
    open_deals,
    produce_raw,
    run_flows,
    signed,
)

pytestmark = pytest.mark.kafka

DECISION = AgentName.DECISION_AGENT.value


def with_request_id(value: bytes, request_id: str) -> bytes:
    """The same envelope, for another request (a valid contract: only the ids differ)."""
    envelope = orjson.loads(value)
    envelope["payload"]["request_id"] = request_id
    envelope["metadata"]["request_id"] = request_id
    envelope["metadata"]["idempotency_key"] = f"{request_id}:dataset"
    return orjson.dumps(envelope)


async def decisions_for(stack: SecureStack, request_ids: set[str]) -> list[str]:
    records = await collect(stack.kafka, stack.settings.topics.decisions, 100_000, timeout_s=2)
    found = []
    for record in records:
        request_id = orjson.loads(record.value)["metadata"]["request_id"]
        if request_id in request_ids:
            found.append(request_id)
    return found


@pytest.fixture(scope="module", params=["record", "batch"])
def attacked_stack(
    request: pytest.FixtureRequest,
    kafka: str,
    secure_stack: SecureStack,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SecureStack]:
    """A stack whose services sign in the mode of the parameter (REVOPS_SIGNING_MODE): the
    session's stack for the default mode, one of its own for the other."""
    if request.param == secure_stack.settings.signing_mode:
        yield secure_stack
        return
    var_dir = tmp_path_factory.mktemp(f"security-{request.param}")
    with running_secure_stack(kafka, var_dir, signing_mode=request.param) as stack:
        yield stack


# Signature headers a genuine dataset record carries, per signing mode.
SIGNATURE_HEADERS = {
    "record": {AUTH_HEADER},
    "batch": {BATCH_TOKEN_HEADER, BATCH_PROOF_HEADER},
}
# Where the forged records go (a batch signature commits to the partition).
ATTACK_PARTITION = 0


async def test_forged_misaddressed_altered_expired_and_replayed_records_are_refused(
    attacked_stack: SecureStack, tmp_path: Path
) -> None:
    """Each attack is made in the form the stack's signing mode produces (a per-record token,
    or a signed batch with its inclusion proof); the consumer must refuse both forms."""
    stack, topics = attacked_stack, attacked_stack.settings.topics
    mode = stack.settings.signing_mode
    first, second = open_deals(stack, 2)
    genuine = deal_trigger(first)
    assert len(await run_flows(stack, [genuine])) == 1

    records = await collect(stack.kafka, topics.datasets, 100_000, timeout_s=2)
    [captured] = [
        r for r in records if orjson.loads(r.value)["metadata"]["request_id"] == genuine.request_id
    ]
    value, headers = captured.value, list(captured.headers)
    assert (
        set(dict(headers)) & {AUTH_HEADER, *SIGNATURE_HEADERS["batch"]} == (SIGNATURE_HEADERS[mode])
    )

    marker = uuid.uuid4().hex
    key = marker.encode()
    attacks: dict[str, str] = {}  # request id -> the code it must be refused with

    def forged(code: str) -> tuple[str, bytes]:
        request_id = f"attack-{code}-{marker}"
        attacks[request_id] = f"AUTHENTICATION_FAILED_{code}"
        return request_id, with_request_id(value, request_id)

    def sign(signer: BatchSigner, forged: bytes, audience: str, now: float | None = None):
        if mode == "record":
            return signed(signer, forged, audience, now=now)
        return batch_signed(
            signer,
            forged,
            audience,
            topic=topics.datasets,
            key=key,
            partition=ATTACK_PARTITION,
            now=now,
        )

    kid = kid_of(stack, "data_agent")
    data_agent = genuine_signer(stack, "data_agent")
    impostor = foreign_signer(tmp_path / "same-kid", "data_agent", kid)
    stranger = foreign_signer(tmp_path / "new-kid", "data_agent", "20990101T000000Z")
    decision_agent = genuine_signer(stack, "decision_agent")

    _, bad_signature = forged("BAD_SIGNATURE")
    _, unknown_kid = forged("UNKNOWN_KID")
    _, wrong_audience = forged("WRONG_AUDIENCE")
    _, expired = forged("EXPIRED")
    _, wrong_issuer = forged("ISSUER_NOT_ALLOWED")
    _, altered = forged("PAYLOAD_MISMATCH")
    _, unsigned = forged("MISSING_TOKEN")
    # The genuine record again: same bytes, same key, same signature headers, to the
    # partition it was produced to (where a batch proof still holds), at a new offset.
    await produce_raw(
        stack.kafka, topics.datasets, [(captured.key, value, headers)], partition=captured.partition
    )
    await produce_raw(
        stack.kafka,
        topics.datasets,
        [
            (key, bad_signature, sign(impostor, bad_signature, DECISION)),
            (key, unknown_kid, sign(stranger, unknown_kid, DECISION)),
            (key, wrong_audience, sign(data_agent, wrong_audience, "execution_agent")),
            (key, expired, sign(data_agent, expired, DECISION, now=time.time() - 3600)),
            (key, wrong_issuer, sign(decision_agent, wrong_issuer, DECISION)),
            (key, altered, headers),  # genuine signature headers, altered payload
            (key, unsigned, [("content-type", b"application/json")]),
        ],
        partition=ATTACK_PARTITION,
    )

    refused = await dead_letters(stack, topics.datasets, key, count=len(attacks))
    codes = {
        orjson.loads(e["original"]["value"])["metadata"]["request_id"]: e["error"]["code"]
        for e in refused
    }
    assert codes == attacks
    replays = [
        e
        for e in await dead_letters(stack, topics.datasets, captured.key, count=1)
        if orjson.loads(e["original"]["value"])["metadata"]["request_id"] == genuine.request_id
    ]
    assert [e["error"]["code"] for e in replays] == ["AUTHENTICATION_FAILED_REPLAYED"]
    assert orjson.loads(replays[0]["original"]["value"]) == orjson.loads(value)

    # A genuine record still flows, and no attack produced a decision.
    later = deal_trigger(second)
    assert [f.request_id for f in await run_flows(stack, [later])] == [later.request_id]
    wanted = [str(genuine.request_id), str(later.request_id)]
    decided = await decisions_for(stack, {*attacks, *wanted})
    assert sorted(decided) == sorted(wanted)


def ssrf_job(action_id: str, destination: str, account_id: str) -> ActionJob:
    return ActionJob(
        action_id=action_id,
        request_id=f"req-{action_id}",
        based_on="rec-ssrf",
        type=ActionType.WEBHOOK,
        channel=Channel.WEBHOOK,
        destination=destination,
        template="deal_alert",
        account_id=account_id,
        context={
            "deal_name": "Acme",
            "customer": "Acme Corp",
            "alert_type": "probe",
            "risk_level": "high",
            "details": "x",
            "recommended_actions": [],
            "time": "2025-06-10T10:35:27Z",
            "score": 1,
            "next_step": "none",
        },
    )


async def test_webhooks_to_loopback_or_metadata_address_are_dead_lettered_and_never_sent(
    secure_stack: SecureStack,
) -> None:
    """Both URLs are (mis)placed on the allow-list, so only the address check stands between
    the job and the request; a job to an allowed destination on the same path goes out."""
    stack, topics = secure_stack, secure_stack.settings.topics
    marker = f"acc-ssrf-{uuid.uuid4().hex[:8]}"
    execution_agent = genuine_signer(stack, AgentName.EXECUTION_AGENT.value)
    jobs = [
        ssrf_job(f"{marker}-loop", "ssrf_loopback", marker),
        ssrf_job(f"{marker}-meta", "ssrf_metadata", marker),
        ssrf_job(f"{marker}-ok", "webhook_generic", marker),
    ]
    records = []
    for job in jobs:
        value = job_envelope(
            job, AgentName.EXECUTION_AGENT.value, AgentName.WEBHOOK_PROCESSOR.value
        )
        records.append(
            (marker.encode(), value, signed(execution_agent, value, "webhook_processor"))
        )
    await produce_raw(stack.kafka, topics.actions, records)

    refused = await dead_letters(stack, topics.actions, marker.encode(), count=2)
    codes = {e["dead_letter"]["original_key"]: e["error"]["code"] for e in refused}
    by_action = {
        orjson.loads(e["original"]["value"])["payload"]["action_id"]: e["error"]["code"]
        for e in refused
    }
    assert set(codes) == {marker}
    assert by_action == {
        f"{marker}-loop": "egress_private_address",
        f"{marker}-meta": "egress_private_address",
    }
    delivered = await stack.sink.wait_for_async(1, path="/generic")
    assert any(r.header("Idempotency-Key") == f"{marker}-ok" for r in delivered)
    assert stack.ssrf_sink.requests() == []
