"""The weekly renewal review through Kafka, every service its own process: the data agent
finds the accounts renewing within 90 days and fans out one renewal-risk trigger each; each
flow is analysed, stored as an insight and routed with the renewal templates."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from contracts import AnalysisType, FlowOutput, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from services.common.flows import FlowWatcher, publish_triggers
from services.data_agent.renewals import renewing_accounts
from services.data_agent.warehouse import open_warehouse

pytestmark = pytest.mark.kafka


async def flows_of_job(stack, trigger: RawTrigger, expected: int, timeout_s: float = 120.0):
    """Flow outputs of the job's children (request id `<job>:<account>`), until `expected`."""
    watcher = FlowWatcher(stack.settings)
    await watcher.start()
    seen: dict[str, FlowOutput] = {}
    try:
        await publish_triggers(stack.settings, [trigger])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline and len(seen) < expected:
            for flow in await watcher.poll():
                if flow.request_id.startswith(f"{trigger.request_id}:"):
                    seen[flow.request_id] = flow
    finally:
        await watcher.stop()
    return seen


async def test_renewal_review_fans_out_and_routes_renewal_alerts(stack):
    warehouse = open_warehouse(stack.settings)
    try:
        accounts = renewing_accounts(warehouse)
    finally:
        warehouse.close()
    assert accounts, "the e2e warehouse has agreements renewing within 90 days"
    job = RawTrigger(
        trigger_type=TriggerType.SCHEDULED,
        parameters=TriggerParameters(analysis_type=AnalysisType.RENEWAL_REVIEW),
        request_id=f"renewal-review-e2e-{uuid.uuid4()}",
    )
    flows = await flows_of_job(stack, job, expected=len(accounts))
    assert set(flows) == {f"{job.request_id}:{account}" for account in accounts}
    for flow in flows.values():
        assert flow.analysis_type is AnalysisType.RENEWAL_RISK
        assert flow.status in {"success", "partial"}
        assert 0 <= flow.scores["renewal_risk"] <= 100
        assert flow.insight_ids  # every renewal in the window is an insight
    rows = [
        json.loads(line)
        for path in stack.settings.resolved_outbox_dir.glob("*.jsonl")
        for line in path.read_text().splitlines()
        if line
    ]
    rendered = [
        text for r in rows if "Renewal alert" in (text := json.dumps(r, ensure_ascii=False))
    ]
    # A critical renewal is alerted at once (Slack and e-mail), with the renewal templates;
    # the seeded warehouse has one (no executive engaged, spend far below the commitment).
    critical = [f for f in flows.values() if f.scores["renewal_risk"] >= 76]
    assert critical
    for flow in critical:
        assert flow.subject.account_name
        assert any(flow.subject.account_name in text for text in rendered)
