"""Fixtures: real loopback servers, a config pointing at them, and an engine harness that
captures what the lead's callbacks (publish_result, dead_letter) receive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contracts.actions import ActionJob, ActionResult, ActionType, Channel
from services.webhook_processor.config import WebhooksConfig
from services.webhook_processor.config_file import parse_config
from services.webhook_processor.delivery_log import DeliveryLog
from services.webhook_processor.engine import DeliveryEngine
from tests.postgres_fixtures import database_url, postgres  # noqa: F401 (fixtures)
from tests.support import HttpRecorder, SmtpRecorder

CONFIG = """
version: 1
defaults:
  timeout_s: 2
  rate_limit: {rate: 1000, period_s: 1}
  retry: {max_attempts: 3, initial_delay_s: 0.01, max_delay_s: 0.05, jitter: 0.1}
  breaker: {failure_threshold: 5, success_threshold: 1, timeout_s: 0.3}
  concurrency: 2
egress:
  allow:
    - {scheme: http, host: 127.0.0.1, port: "${SINK_PORT}"}
    - {scheme: smtp, host: 127.0.0.1, port: "${SMTP_PORT}"}
  allow_private: ["127.0.0.1/32"]
destinations:
  slack_revops_alerts:
    type: slack_webhook
    url: ${SINK}/slack/revops
  slack_cs_alerts:
    type: slack_webhook
    url: ${SINK}/slack/cs
  slack_bot:
    type: slack_api
    url: ${SINK}/api/chat.postMessage
    bearer_token: xoxb-test
    channel: "#revops-alerts"
  email_revops:
    type: email_smtp
    host: 127.0.0.1
    port: ${SMTP_PORT}
    starttls: false
    sender: revops-ai@example.com
    to: [revops@example.com]
  crm_salesforce:
    type: crm_salesforce
    instance_url: ${SINK}
    bearer_token: sf-token
  ticket_jira:
    type: ticket_jira
    url: ${SINK}/rest/api/2/issue
    basic_auth: {username: bot@example.com, password: jira-token}
    options: {project_key: REV}
  ticket_zendesk:
    type: ticket_zendesk
    url: ${SINK}/api/v2/tickets.json
    bearer_token: zd-token
  webhook_generic:
    type: generic_webhook
    url: ${SINK}/hook
    secret: s3cret
"""

DEAL_CONTEXT = {
    "deal_name": "Acme expansion",
    "customer": "Acme Corp",
    "alert_type": "ICP misalignment",
    "risk_level": "high",
    "details": "Company size 40 employees, below ICP minimum of 200.",
    "recommended_actions": ["Re-qualify the opportunity", "Loop in the SE lead"],
    "time": "2025-06-10T10:35:27Z",
    "score": 42,
    "next_step": "Re-qualify with champion",
}
CONSUMPTION_CONTEXT = {
    "customer": "Globex",
    "pattern": "usage decline",
    "urgency": "critical",
    "details": "Daily compute down 45% week over week.",
    "recommended_actions": ["Call the champion", "Review query failures"],
    "time": "2025-06-10T10:35:27Z",
}

CHANNELS = {
    "slack": Channel.SLACK,
    "email": Channel.EMAIL,
    "crm": Channel.CRM,
    "ticket": Channel.TICKET,
    "webhook": Channel.WEBHOOK,
}


def make_job(
    action_id: str,
    destination: str,
    channel: str = "slack",
    template: str = "deal_alert",
    context: dict[str, Any] | None = None,
    **extra: Any,
) -> ActionJob:
    fields: dict[str, Any] = {
        "action_id": action_id,
        "request_id": "req-1",
        "based_on": "rec-1",
        "type": ActionType.NOTIFICATION,
        "channel": CHANNELS[channel],
        "destination": destination,
        "template": template,
        "account_id": "acc-1",
        "opportunity_id": "006A000001",
        "context": dict(DEAL_CONTEXT if context is None else context),
    }
    fields.update(extra)
    return ActionJob(**fields)


def make_config(sink: HttpRecorder, smtp_port: int = 2525, text: str = CONFIG) -> WebhooksConfig:
    env = {"SINK": sink.base_url, "SINK_PORT": str(sink.port), "SMTP_PORT": str(smtp_port)}
    return parse_config(text, env=env)


@dataclass
class Harness:
    engine: DeliveryEngine
    log: DeliveryLog
    results: list[ActionResult] = field(default_factory=list)
    dead: list[tuple[ActionJob, str, str]] = field(default_factory=list)

    async def wait_results(self, count: int, wait_s: float = 10.0) -> list[ActionResult]:
        deadline = asyncio.get_running_loop().time() + wait_s
        while len(self.results) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"expected {count} results, got {self.results}")
            await asyncio.sleep(0.01)
        return list(self.results)

    def result(self, action_id: str) -> ActionResult:
        [found] = [r for r in self.results if r.action_id == action_id]
        return found


def build_harness(
    config: WebhooksConfig, db: Path, outbox_dir: Path, url: str | None = None
) -> Harness:
    """`url`: a PostgreSQL database instead of the SQLite file `db` ("" = the file)."""
    log = DeliveryLog(db, url)
    harness: Harness

    async def publish(results: Sequence[ActionResult]) -> None:
        harness.results.extend(results)

    async def dead_letter(job: ActionJob, code: str, message: str) -> None:
        harness.dead.append((job, code, message))

    engine = DeliveryEngine(config, log, publish, dead_letter, outbox_dir=outbox_dir)
    harness = Harness(engine, log)
    return harness


@pytest.fixture
def sink() -> Iterator[HttpRecorder]:
    with HttpRecorder() as recorder:
        yield recorder


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    with SmtpRecorder() as recorder:
        yield recorder


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def harness_factory(
    sink: HttpRecorder, smtp: SmtpRecorder, tmp_path: Path
) -> AsyncIterator[HarnessFactory]:
    """Build and start engines on a config edited by `replace` ({old: new} text edits);
    every engine is stopped at the end. Same `db` name = same outbox (restart tests)."""
    made: list[Harness] = []

    async def factory(
        replace: dict[str, str] | None = None, db: str = "deliveries.db", start: bool = True
    ) -> Harness:
        text = CONFIG
        for old, new in (replace or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        h = build_harness(make_config(sink, smtp.port, text), tmp_path / db, tmp_path / "outbox")
        if start:
            await h.engine.start()
        made.append(h)
        return h

    yield factory
    for h in made:
        await h.engine.stop(timeout_s=5)
        h.log.close()


@pytest.fixture
async def harness(sink: HttpRecorder, smtp: SmtpRecorder, tmp_path: Path) -> AsyncIterator[Harness]:
    h = build_harness(make_config(sink, smtp.port), tmp_path / "deliveries.db", tmp_path / "outbox")
    await h.engine.start()
    yield h
    await h.engine.stop(timeout_s=5)
    h.log.close()
