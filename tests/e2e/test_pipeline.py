"""The whole pipeline, every service its own process, on a real broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import orjson
import pytest

from contracts import AnalysisType, FlowOutput, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from services.common.flows import FlowWatcher, publish_triggers
from services.data_agent.fleet import fleet_screen
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.queries import LIST_OPEN_OPPORTUNITIES
from tests.kafka_tools import collect, produce

pytestmark = pytest.mark.kafka


def open_deal(stack, index: int = 0) -> dict:
    wh = open_warehouse(stack.settings)
    try:
        return wh.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": index + 1})[index]
    finally:
        wh.close()


def flagged_account(stack) -> str:
    wh = open_warehouse(stack.settings)
    try:
        return fleet_screen(wh)[0].account_id
    finally:
        wh.close()


def deal_trigger(deal: dict, request_id: str | None = None) -> RawTrigger:
    return RawTrigger(
        trigger_type=TriggerType.MANUAL,
        parameters=TriggerParameters(
            account_id=deal["sf_account_id"],
            opportunity_id=deal["opportunity_id"],
            analysis_type=AnalysisType.DEAL_QUALITY,
        ),
        request_id=request_id or f"e2e-{uuid.uuid4()}",
    )


async def run_and_collect(stack, triggers, settle_s: float = 3.0, timeout_s: float = 60.0):
    """Publishes triggers, returns every flow output seen (duplicates included)."""
    watcher = FlowWatcher(stack.settings)
    await watcher.start()
    seen: list[FlowOutput] = []
    try:
        await publish_triggers(stack.settings, triggers)
        wanted = {t.request_id for t in triggers}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            seen += [f for f in await watcher.poll() if f.request_id in wanted]
            if wanted <= {f.request_id for f in seen}:
                # everything arrived: keep listening a little to catch any duplicate
                deadline = min(deadline, loop.time() + settle_s)
    finally:
        await watcher.stop()
    return seen


def outbox_requests(stack) -> list[dict]:
    rows: list[dict] = []
    for path in stack.settings.resolved_outbox_dir.glob("*.jsonl"):
        rows.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return rows


def idempotency_key(row: dict) -> str | None:
    headers = {k.lower(): v for k, v in (row.get("request", {}).get("headers") or {}).items()}
    return headers.get("idempotency-key") or row.get("idempotency_key")


async def test_deal_trigger_produces_one_complete_flow_output(stack):
    deal = open_deal(stack)
    trigger = deal_trigger(deal)
    flows = await run_and_collect(stack, [trigger])
    assert len(flows) == 1
    flow = flows[0]
    assert flow.request_id == trigger.request_id
    assert flow.analysis_type is AnalysisType.DEAL_QUALITY
    assert flow.subject.opportunity_id == deal["opportunity_id"]
    assert flow.status in {"success", "partial"}
    assert 0 <= flow.scores["deal_quality"] <= 100
    assert {"icp_fit", "deal_health", "data_completeness", "technical_fit"} <= set(flow.scores)
    assert flow.execution_time_ms > 0
    assert flow.results_location.table == "revops_ai_executions"
    assert trigger.request_id in flow.results_location.query
    summary = flow.execution.summary
    assert summary.total_actions == len(flow.execution.execution_results.actions_executed) > 0
    assert summary.successful + summary.failed + summary.queued == summary.total_actions
    assert flow.insight_ids
    assert flow.flow_execution_id


async def test_consumption_trigger_flows_through(stack):
    account = flagged_account(stack)
    trigger = RawTrigger(
        trigger_type=TriggerType.SCHEDULED,
        parameters=TriggerParameters(account_id=account, analysis_type=AnalysisType.CONSUMPTION),
        request_id=f"e2e-{uuid.uuid4()}",
    )
    flows = await run_and_collect(stack, [trigger])
    assert len(flows) == 1
    assert flows[0].analysis_type is AnalysisType.CONSUMPTION
    assert {"customer_health", "churn_risk"} <= set(flows[0].scores)


async def test_same_request_id_three_times_is_one_flow_and_one_delivery_each(stack):
    trigger = deal_trigger(open_deal(stack, 1))
    flows = await run_and_collect(stack, [trigger, trigger, trigger], settle_s=4.0)
    assert len(flows) == 1
    action_ids = {a.id for a in flows[0].execution.execution_results.actions_executed}
    delivered = [
        idempotency_key(r) for r in outbox_requests(stack) if idempotency_key(r) in action_ids
    ]
    immediate = [
        a for a in flows[0].execution.execution_results.actions_executed if a.status == "success"
    ]
    assert len(delivered) == len(set(delivered)) == len(immediate)


async def test_bad_triggers_go_to_the_dlq_and_valid_ones_still_flow(stack):
    kafka = stack.settings.kafka_bootstrap_servers
    topic = stack.settings.topics.triggers
    marker = uuid.uuid4().hex
    bad: list[bytes | dict[str, Any]] = [
        b"{not json " + marker.encode(),
        {
            "trigger_type": "manual",
            "parameters": {"analysis_type": "horoscope"},
            "request_id": marker,
        },
        {
            "trigger_type": "manual",
            "parameters": {"account_id": f"NOPE-{marker}", "analysis_type": "consumption"},
            "request_id": f"{marker}-unknown",
        },
    ]
    await produce(kafka, topic, bad, key=marker.encode())
    trigger = deal_trigger(open_deal(stack))
    flows = await run_and_collect(stack, [trigger], settle_s=0.5)
    assert [f.request_id for f in flows] == [trigger.request_id]

    dlq = await collect(kafka, f"{topic}.dlq", 10_000, timeout_s=5)
    ours = [orjson.loads(r.value) for r in dlq if r.key == marker.encode()]
    codes = sorted(e["error"]["code"] for e in ours)
    assert codes == ["INVALID_JSON", "INVALID_TRIGGER", "UNKNOWN_SUBJECT"]
    invalid = next(e for e in ours if e["error"]["code"] == "INVALID_TRIGGER")
    assert "analysis_type" in invalid["error"]["details"]
    unknown = next(e for e in ours if e["error"]["code"] == "UNKNOWN_SUBJECT")
    assert f"NOPE-{marker}" in unknown["error"]["message"]


async def test_a_plain_kafka_client_trigger_without_request_id_works(stack):
    """What kcat or kafka-console-producer would send: JSON, no request id."""
    deal = open_deal(stack, 2)
    watcher = FlowWatcher(stack.settings)
    await watcher.start()
    try:
        await produce(
            stack.settings.kafka_bootstrap_servers,
            stack.settings.topics.triggers,
            [
                {
                    "trigger_type": "event",
                    "parameters": {
                        "account_id": deal["sf_account_id"],
                        "opportunity_id": deal["opportunity_id"],
                        "analysis_type": "deal_quality",
                    },
                }
            ],
            key=deal["sf_account_id"].encode(),
        )
        match = None
        async for flow in watcher.outputs(60):
            if flow.subject.opportunity_id == deal["opportunity_id"]:
                match = flow
                break
    finally:
        await watcher.stop()
    assert match is not None
    assert match.request_id.startswith("req-")


async def test_every_service_exposes_its_metrics(stack):
    async with httpx.AsyncClient() as client:
        texts = {
            name: (await client.get(stack.metrics_url(name))).text for name in stack.local.ports
        }
    for name, text in texts.items():
        assert f'revops_messages_consumed_total{{service="{name}"' in text, name
        assert "revops_message_processing_seconds_bucket" in text, name
    assert (
        'revops_messages_produced_total{service="data_agent",topic="revops.datasets"}'
        in texts["data_agent"]
    )
    assert "revops_flows_completed_total" in texts["execution_agent"]
    assert "revops_circuit_breaker_state" in texts["webhook_processor"]
