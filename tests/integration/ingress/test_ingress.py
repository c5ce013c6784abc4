"""The HTTP ingress over real HTTP against the real broker."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from services.common.security import AUTH_HEADER
from services.common.security.batch_signing import BATCH_PROOF_HEADER, BATCH_TOKEN_HEADER
from services.common.security.hmac_auth import sign_request
from services.ingress.openapi import COMMITTED, build_openapi
from tests.integration.ingress.conftest import (
    HMAC_SECRET,
    MAX_BODY,
    Ingress,
    fake_execution_agent,
)
from tests.kafka_tools import collect

pytestmark = pytest.mark.kafka

BEARER = {"Authorization": "Bearer tok-new-9876543210"}
DEAL = {
    "trigger_type": "manual",
    "parameters": {
        "account_id": "ACC-1",
        "opportunity_id": "OPP-1",
        "analysis_type": "deal_quality",
    },
}


def signed(body: bytes, secret: str = HMAC_SECRET, at: float | None = None) -> dict[str, str]:
    ts = int(time.time() if at is None else at)
    return {
        "X-RevOps-Timestamp": str(ts),
        "X-RevOps-Signature": sign_request(secret.encode(), ts, body),
        "Content-Type": "application/json",
    }


async def poll_until_complete(ingress: Ingress, url: str, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = await ingress.client.get(url, headers=BEARER)
        assert response.status_code == 200
        if response.json()["status"] == "complete":
            return response.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never completed")


# The headers a published trigger carries, per signing mode (consumers accept both).
SIGNATURE_HEADERS = {
    "record": {AUTH_HEADER},
    "batch": {BATCH_TOKEN_HEADER, BATCH_PROOF_HEADER},
}


@pytest.mark.parametrize("signing_mode", ["record", "batch"])
async def test_trigger_is_accepted_then_its_flow_output_is_at_the_status_url(
    ingress: Ingress, signing_mode: str
):
    body = {**DEAL, "request_id": "req-client-1"}
    response = await ingress.client.post("/v1/triggers", json=body, headers=BEARER)
    assert response.status_code == 202
    assert response.json() == {"request_id": "req-client-1", "status_url": "/v1/flows/req-client-1"}
    pending = await ingress.client.get("/v1/flows/req-client-1", headers=BEARER)
    assert pending.json() == {
        "request_id": "req-client-1",
        "status": "accepted",
        "flow": None,
        "rejection": None,
    }

    async with fake_execution_agent(ingress.settings) as seen:
        done = await poll_until_complete(ingress, "/v1/flows/req-client-1")
    assert done["flow"]["request_id"] == "req-client-1"
    subject = done["flow"]["subject"]
    assert (subject["account_id"], subject["opportunity_id"]) == ("ACC-1", "OPP-1")
    assert [t["request_id"] for t in seen] == ["req-client-1"]

    records = await collect(ingress.kafka, ingress.settings.topics.triggers, 1, timeout_s=5)
    assert len(records) == 1
    assert records[0].key == b"ACC-1"  # keyed by account id
    published = orjson.loads(records[0].value)
    assert published["parameters"] == DEAL["parameters"]
    # Signed by the ingress identity, in the form the signing mode asks for.
    signature_headers = set(dict(records[0].headers)) & {AUTH_HEADER, *SIGNATURE_HEADERS["batch"]}
    assert signature_headers == SIGNATURE_HEADERS[signing_mode]

    metrics = (await ingress.client.get("/metrics")).text
    assert 'revops_http_requests_total{method="POST",route="/v1/triggers",status="202"}' in metrics
    assert (await ingress.client.get("/healthz")).status_code == 200
    assert (await ingress.client.get("/readyz")).status_code == 200


@pytest.mark.parametrize("forger", [None, "webhook_processor"])
async def test_a_flow_output_not_signed_by_the_execution_agent_is_never_shown(
    ingress: Ingress, forger: str | None
):
    """Unsigned, or signed by a service that may not publish flow outputs: refused."""
    body = {**DEAL, "request_id": f"req-forged-{forger}"}
    response = await ingress.client.post("/v1/triggers", json=body, headers=BEARER)
    status_url = response.json()["status_url"]
    with capture_logs() as logs:
        async with fake_execution_agent(ingress.settings, signer=forger) as seen:
            deadline = time.monotonic() + 20
            while not any(e["event"] == "flow_result_rejected" for e in logs):
                assert time.monotonic() < deadline, "the forged flow output was never read"
                await asyncio.sleep(0.1)
    assert [t["request_id"] for t in seen] == [body["request_id"]]
    [rejected] = [e for e in logs if e["event"] == "flow_result_rejected"]
    assert rejected["code"].startswith("AUTHENTICATION_FAILED_")
    still = await ingress.client.get(status_url, headers=BEARER)
    assert still.json()["status"] == "accepted" and still.json()["flow"] is None

    async with fake_execution_agent(ingress.settings):  # the real one answers: shown
        done = await poll_until_complete(ingress, status_url)
    assert done["flow"]["request_id"] == body["request_id"]


async def test_hmac_signed_trigger_gets_a_generated_request_id(ingress: Ingress):
    body = orjson.dumps(DEAL)
    response = await ingress.client.post("/v1/triggers", content=body, headers=signed(body))
    assert response.status_code == 202
    request_id = response.json()["request_id"]
    assert re.fullmatch(
        r"req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", request_id
    )

    async with fake_execution_agent(ingress.settings):
        done = await poll_until_complete(ingress, response.json()["status_url"])
    assert done["flow"]["request_id"] == request_id
    # A GET signs its path: the same headers cannot read another request.
    path = f"/v1/flows/{request_id}"
    own = await ingress.client.get(path, headers=signed(path.encode()))
    assert own.status_code == 200 and own.json()["status"] == "complete"
    other = await ingress.client.get("/v1/flows/req-other", headers=signed(path.encode()))
    assert other.status_code == 401
    unknown = await ingress.client.get("/v1/flows/req-never-seen", headers=BEARER)
    assert unknown.status_code == 404


async def test_salesforce_stage_change_becomes_a_deal_quality_trigger(ingress: Ingress):
    event: dict[str, Any] = {
        "schema": "opportunity-stage-change-v1",
        "payload": {
            "OpportunityId__c": "006-OPP-9",
            "AccountId__c": "001-ACC-9",
            "OldStage__c": "Proof of Concept",
            "NewStage__c": "Negotiate",
            "ChangedAt__c": "2025-03-01T10:00:00Z",
        },
        "event": {"replayId": 7},
    }
    first = await ingress.client.post(
        "/v1/events/salesforce/opportunity", json=event, headers=BEARER
    )
    again = await ingress.client.post(
        "/v1/events/salesforce/opportunity", json=event, headers=BEARER
    )
    assert first.status_code == again.status_code == 202
    # The same Salesforce event is the same request (redelivery does not make a second review).
    assert first.json()["request_id"] == again.json()["request_id"]

    unchanged = {**event, "payload": {**event["payload"], "OldStage__c": "Negotiate"}}
    closed = {**event, "payload": {**event["payload"], "NewStage__c": "Closed Won"}}
    for body, reason in ((unchanged, "stage_unchanged"), (closed, "deal_closed")):
        ignored = await ingress.client.post(
            "/v1/events/salesforce/opportunity", json=body, headers=BEARER
        )
        assert ignored.status_code == 200
        assert ignored.json() == {"status": "ignored", "reason": reason}

    records = await collect(ingress.kafka, ingress.settings.topics.triggers, 2, settle_s=1.0)
    assert len(records) == 2
    trigger = orjson.loads(records[0].value)
    assert trigger["trigger_type"] == "event"
    assert trigger["priority"] == "high"
    assert trigger["request_id"] == first.json()["request_id"]
    assert trigger["parameters"] == {
        "account_id": "001-ACC-9",
        "opportunity_id": "006-OPP-9",
        "analysis_type": "deal_quality",
    }


async def test_refused_requests_get_a_reason_are_logged_without_secrets_and_never_reach_kafka(
    ingress: Ingress,
):
    body = orjson.dumps(DEAL)
    bad_schema = orjson.dumps(
        {**DEAL, "parameters": {"analysis_type": "deal_quality"}, "extra": "s3cr3t-value"}
    )
    huge = orjson.dumps({**DEAL, "requester": "x" * (MAX_BODY + 1)})
    first_use = signed(body)
    cases = [
        (
            "missing credentials",
            body,
            {"Content-Type": "application/json"},
            401,
            "missing_credentials",
        ),
        ("bad signature", body, signed(body, secret="wrong-secret"), 401, "bad_request_signature"),
        ("tampered body", body + b" ", signed(body), 401, "bad_request_signature"),
        ("old timestamp", body, signed(body, at=time.time() - 301), 401, "stale_request"),
        (
            "bad bearer",
            body,
            {"Authorization": "Bearer nope", "Content-Type": "application/json"},
            401,
            "bad_bearer_token",
        ),
        ("first use", body, first_use, 202, None),
        ("replayed signature", body, first_use, 401, "replayed"),
        ("over the limit", huge, signed(huge), 413, "body_too_large"),
        ("not json", body, {**BEARER, "Content-Type": "text/plain"}, 415, "media_type"),
        ("schema violation", bad_schema, signed(bad_schema), 422, "schema_violation"),
        ("not even json", b"{nope", signed(b"{nope"), 422, "schema_violation"),
    ]
    with capture_logs() as logs:
        for name, content, headers, status, code in cases:
            response = await ingress.client.post("/v1/triggers", content=content, headers=headers)
            assert response.status_code == status, name
            if code is not None:
                problem = response.json()
                assert problem["code"] == code, name
                assert problem["detail"], name
                assert "s3cr3t-value" not in response.text
    schema = await ingress.client.post(
        "/v1/triggers", content=bad_schema, headers={**BEARER, "Content-Type": "application/json"}
    )
    locs = {e["loc"] for e in schema.json()["errors"]}
    assert locs == {"parameters", "extra"}

    records = await collect(ingress.kafka, ingress.settings.topics.triggers, 2, timeout_s=3)
    assert len(records) == 1  # only the one good request
    refusals = [e for e in logs if e["event"] == "request_refused"]
    assert len(refusals) == sum(1 for c in cases if c[3] >= 400)
    assert {e["status"] for e in refusals} == {401, 413, 415, 422}
    text = repr(logs)
    for secret in ("tok-new-9876543210", HMAC_SECRET, first_use["X-RevOps-Signature"], "s3cr3t"):
        assert secret not in text


async def test_openapi_document_is_served_and_matches_the_committed_file(ingress: Ingress):
    served = (await ingress.client.get("/openapi.json")).json()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert served == committed == build_openapi()
    assert set(served["paths"]) == {
        "/v1/triggers",
        "/v1/flows/{request_id}",
        "/v1/events/salesforce/opportunity",
    }
