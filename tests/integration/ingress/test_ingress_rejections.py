"""A trigger the pipeline rejects is visible to its sender: `GET /v1/flows/{id}` becomes
"rejected" with the dead letter's code and reason (no longer "accepted" forever)."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.common.errors import PermanentError
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.data_agent.app import parse_trigger
from tests.integration.ingress.conftest import Ingress

pytestmark = pytest.mark.kafka

BEARER = {"Authorization": "Bearer tok-new-9876543210"}


async def test_a_rejected_trigger_has_status_rejected_with_code_and_reason(ingress: Ingress):
    # The data agent's parser and the real runtime; the warehouse does not know the account.
    data_agent = ServiceRuntime("data_agent_test", ingress.settings, http_port=None)

    async def unknown_subject(item: Parsed, record: Record) -> list[Outgoing]:
        raise PermanentError("account ACC-404 not found in the warehouse", code="UNKNOWN_SUBJECT")

    data_agent.subscribe(ingress.settings.topics.triggers, parse_trigger, unknown_subject)
    await data_agent.start()
    try:
        body = {
            "trigger_type": "manual",
            "request_id": "req-rejected-1",
            "parameters": {"account_id": "ACC-404", "analysis_type": "consumption"},
        }
        accepted = await ingress.client.post("/v1/triggers", json=body, headers=BEARER)
        assert accepted.status_code == 202
        status = await poll_until_not_accepted(ingress, "/v1/flows/req-rejected-1")
    finally:
        await data_agent.stop()
    assert status["status"] == "rejected"
    assert status["flow"] is None
    rejection = status["rejection"]
    assert rejection["code"] == "UNKNOWN_SUBJECT"
    assert rejection["reason"] == "account ACC-404 not found in the warehouse"
    assert rejection["dead_letter"].startswith(f"{ingress.settings.topics.triggers}.dlq:")


async def poll_until_not_accepted(ingress: Ingress, url: str, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = await ingress.client.get(url, headers=BEARER)
        assert response.status_code == 200
        if response.json()["status"] != "accepted":
            return response.json()
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} still accepted after {timeout_s} s")
