"""No secret value ever leaves through a log line, a dead letter or a metric.

The stack's destinations use known credentials (a Slack webhook URL token, a Salesforce
bearer, a Jira API token, a Slack bot token, a webhook HMAC secret) and real signing keys.
After good flows, failed deliveries (403/404 from the destination) and bad triggers, every
service log, every record on every DLQ topic and every /metrics page is searched for each
of them: none may appear. Runs after the attack tests (file order), so their dead letters
are searched too.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from contracts import AgentName, AnalysisType, RawTrigger
from contracts.actions import ActionJob, ActionType, Channel
from contracts.trigger import TriggerParameters, TriggerType
from services.common.settings import dlq_topic
from tests.kafka_tools import collect, produce
from tests.security.conftest import SecureStack
from tests.security.pipeline import (
    dead_letters,
    deal_trigger,
    genuine_signer,
    job_envelope,
    open_deals,
    produce_raw,
    run_flows,
    signed,
)

pytestmark = pytest.mark.kafka


def private_key_bodies(keys_dir: Path) -> list[str]:
    """The base64 lines of every private key PEM (a leak of any line is a leak)."""
    bodies = []
    for path in keys_dir.glob("*.key"):
        lines = path.read_text().splitlines()
        bodies += [line for line in lines if line and not line.startswith("-----")]
    assert bodies, "the stack has no private keys?"
    return bodies


def failing_job(action_id: str, destination: str, channel: Channel, account: str) -> ActionJob:
    return ActionJob(
        action_id=action_id,
        request_id=f"req-{action_id}",
        based_on="rec-leak",
        type=ActionType.TICKET if channel is Channel.TICKET else ActionType.NOTIFICATION,
        channel=channel,
        destination=destination,
        template="consumption_alert",
        account_id=account,
        context={
            "customer": "Globex",
            "pattern": "usage decline",
            "urgency": "critical",
            "details": "Daily compute down 45% week over week.",
            "recommended_actions": ["Call the champion"],
            "time": "2025-06-10T10:35:27Z",
        },
    )


async def test_no_secret_in_logs_dead_letters_or_metrics(secure_stack: SecureStack) -> None:
    stack, topics = secure_stack, secure_stack.settings.topics
    cs_path = f"/services/T0SEC/B0SEC/{stack.secrets['slack_cs_token']}"
    # Careless destinations echo the credential in their error answer; that text travels
    # into the delivery error (ActionResult, DLQ record, log line) unless it is redacted.
    stack.sink.respond(cs_path, status=404, json={"error": f"no_service for {cs_path}"})
    jira_echo = f"API token {stack.secrets['jira_token']} is not valid for project REVOPS"
    stack.sink.respond("/jira/rest/api/2/issue", status=403, json={"errorMessages": [jira_echo]})

    # Good flows: every deal review writes to Salesforce with the bearer token.
    deals = open_deals(stack, 6)[2:5]
    triggers = [deal_trigger(d, tag="leak") for d in deals]
    assert len(await run_flows(stack, triggers)) == len(triggers)

    # Bad triggers (DLQ of the triggers topic).
    marker = uuid.uuid4().hex
    unknown = RawTrigger(
        trigger_type=TriggerType.MANUAL,
        parameters=TriggerParameters(
            account_id=f"NOPE-{marker}", analysis_type=AnalysisType.CONSUMPTION
        ),
        request_id=f"leak-unknown-{marker}",
    )
    await produce(
        stack.kafka,
        topics.triggers,
        [b"{broken " + marker.encode(), unknown.model_dump(mode="json")],
        key=marker.encode(),
    )
    # Deliveries the destinations refuse (DLQ of the actions topic, credential in the request).
    account = f"acc-leak-{marker[:8]}"
    signer = genuine_signer(stack, AgentName.EXECUTION_AGENT.value)
    jobs = [
        failing_job(f"{marker}-jira", "ticket_jira", Channel.TICKET, account),
        failing_job(f"{marker}-slack", "slack_cs_alerts", Channel.SLACK, account),
    ]
    records = []
    for job in jobs:
        value = job_envelope(
            job, AgentName.EXECUTION_AGENT.value, AgentName.WEBHOOK_PROCESSOR.value
        )
        records.append((account.encode(), value, signed(signer, value, "webhook_processor")))
    await produce_raw(stack.kafka, topics.actions, records)

    assert len(await dead_letters(stack, topics.triggers, marker.encode(), count=2)) == 2
    failed = await dead_letters(stack, topics.actions, account.encode(), count=2)
    assert len(failed) == 2

    # The secrets were really used on the wire (else the search below proves nothing).
    salesforce = stack.sink.requests()
    bearer = f"Bearer {stack.secrets['salesforce_token']}"
    assert any(r.header("Authorization") == bearer for r in salesforce)
    jira = stack.sink.requests("/jira/rest/api/2/issue")
    basic = base64.b64encode(f"revops-bot:{stack.secrets['jira_token']}".encode()).decode()
    assert any(r.header("Authorization") == f"Basic {basic}" for r in jira)
    assert stack.sink.requests(cs_path)

    secrets = {**stack.secrets, "jira_basic_auth": basic}
    secrets.update({f"key_line_{i}": v for i, v in enumerate(private_key_bodies(stack.keys_dir))})

    haystacks: dict[str, str] = {}
    for path in stack.log_files():
        haystacks[f"log {path.name}"] = path.read_text(errors="replace")
    for topic in (dlq_topic(t) for t in topics.consumed()):
        for r in await collect(stack.kafka, topic, 100_000, timeout_s=1.5):
            headers = " ".join(f"{k}={v!r}" for k, v in r.headers)
            haystacks[f"{topic}@{r.partition}/{r.offset}"] = (
                f"{r.value.decode(errors='replace')} {headers}"
            )
    for service, text in (await stack.metrics_texts()).items():
        haystacks[f"metrics {service}"] = text

    assert sum(1 for name in haystacks if ".dlq@" in name) >= 4
    leaks = [
        f"{secret_name} in {where}"
        for where, text in haystacks.items()
        for secret_name, value in secrets.items()
        if value in text
    ]
    assert leaks == []
