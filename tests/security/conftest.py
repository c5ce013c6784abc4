"""A hardened stack for the security tests: the four services as processes on the real broker,
on topics of their own, with HTTP destinations on a loopback recorder whose credentials are
known secret values (so a test can look for them everywhere afterwards)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from demo.seed import seed_warehouse
from services.cli.orchestrator import SERVICES, LocalStack
from services.common.settings import Settings
from services.common.topics import ensure_topics
from tests.kafka_broker import free_port
from tests.support import HttpRecorder
from tests.support.isolation import isolated_names

# Legitimate destinations listen on 127.0.0.2 (allowed as private); the SSRF target listens on
# 127.0.0.1, which the egress policy must refuse although the URL is on the allow-list.
SINK_HOST = "127.0.0.2"

WEBHOOKS = """
version: 1
defaults:
  timeout_s: 5
  rate_limit: {{rate: 200, period_s: 1}}
  retry: {{max_attempts: 2, initial_delay_s: 0.05, max_delay_s: 0.2, jitter: 0}}
  concurrency: 2
egress:
  allow:
    - {{scheme: http, host: "{sink}", port: {port}}}
    - {{scheme: http, host: 127.0.0.1, port: {ssrf_port}}}
    - {{scheme: http, host: 169.254.169.254}}
  allow_private: ["{sink}/32"]
destinations:
  slack_revops_alerts:
    type: slack_webhook
    url: ${{REVOPS_SLACK_REVOPS_WEBHOOK_URL}}
  slack_cs_alerts:
    type: slack_webhook
    url: ${{REVOPS_SLACK_CS_WEBHOOK_URL}}
  slack_revops_bot:
    type: slack_api
    url: http://{sink}:{port}/api/chat.postMessage
    bearer_token: ${{REVOPS_SLACK_BOT_TOKEN}}
    channel: "#revops-alerts"
  email_revops:
    type: outbox_file
    simulate:
      type: email_smtp
      host: smtp.example.com
      sender: revops-ai@example.com
      to: [revops-team@example.com]
  crm_salesforce:
    type: crm_salesforce
    instance_url: http://{sink}:{port}
    bearer_token: ${{REVOPS_SALESFORCE_ACCESS_TOKEN}}
  ticket_jira:
    type: ticket_jira
    url: http://{sink}:{port}/jira/rest/api/2/issue
    basic_auth: {{username: revops-bot, password: "${{REVOPS_JIRA_API_TOKEN}}"}}
    options: {{project_key: REVOPS, issue_type: Task}}
  ticket_zendesk:
    type: outbox_file
    simulate:
      type: ticket_zendesk
      url: https://demo.zendesk.com/api/v2/tickets.json
  webhook_generic:
    type: generic_webhook
    url: http://{sink}:{port}/generic
    secret: ${{REVOPS_GENERIC_WEBHOOK_SECRET}}
  ssrf_loopback:
    type: generic_webhook
    url: http://127.0.0.1:{ssrf_port}/steal
    secret: ${{REVOPS_GENERIC_WEBHOOK_SECRET}}
  ssrf_metadata:
    type: generic_webhook
    url: http://169.254.169.254/latest/meta-data/iam/security-credentials/
    secret: ${{REVOPS_GENERIC_WEBHOOK_SECRET}}
"""


def _secret(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(16)}"


@dataclass
class SecureStack:
    settings: Settings
    local: LocalStack
    var_dir: Path
    sink: HttpRecorder
    ssrf_sink: HttpRecorder
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def kafka(self) -> str:
        return self.settings.kafka_bootstrap_servers

    @property
    def keys_dir(self) -> Path:
        return self.settings.resolved_keys_dir

    def log_files(self) -> list[Path]:
        return sorted(self.local.log_dir.glob("*.log"))

    async def metrics_texts(self) -> dict[str, str]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return {
                name: (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                for name, port in self.local.ports.items()
            }


@contextlib.contextmanager
def running_secure_stack(
    kafka: str, var_dir: Path, *, signing_mode: str | None = None
) -> Iterator[SecureStack]:
    """The four services on topics of their own, signing as `signing_mode` says (the
    settings' default when None)."""
    topics, isolation = isolated_names("sec")
    mode = signing_mode or str(Settings.model_fields["signing_mode"].default)
    with HttpRecorder(host=SINK_HOST) as sink, HttpRecorder() as ssrf_sink:
        # Jira answers 403: its jobs are dead-lettered with the credential in the request.
        sink.respond("/jira/rest/api/2/issue", status=403, json={"errorMessages": ["denied"]})
        sink.respond("/api/chat.postMessage", status=200, json={"ok": True, "ts": "1.2"})
        values = {
            "slack_revops_token": _secret("slackrevops"),
            "slack_cs_token": _secret("slackcs"),
            "slack_bot_token": _secret("xoxb-"),
            "salesforce_token": _secret("00Dsf!"),
            "jira_token": _secret("jira"),
            "generic_secret": _secret("generic"),
        }
        webhooks = var_dir / "webhooks.yaml"
        webhooks.write_text(
            WEBHOOKS.format(sink=SINK_HOST, port=sink.port, ssrf_port=ssrf_sink.port),
            encoding="utf-8",
        )
        slack = f"http://{SINK_HOST}:{sink.port}/services/T0SEC/B0SEC"
        env = {
            "REVOPS_VAR_DIR": str(var_dir),
            "REVOPS_KAFKA_BOOTSTRAP_SERVERS": kafka,
            "REVOPS_RETRY_INITIAL_DELAY_S": "0.05",
            **isolation,
            "REVOPS_SIGNING_MODE": mode,
            "REVOPS_WEBHOOKS_FILE": str(webhooks),
            "REVOPS_SLACK_REVOPS_WEBHOOK_URL": f"{slack}/{values['slack_revops_token']}",
            "REVOPS_SLACK_CS_WEBHOOK_URL": f"{slack}/{values['slack_cs_token']}",
            "REVOPS_SLACK_BOT_TOKEN": values["slack_bot_token"],
            "REVOPS_SALESFORCE_ACCESS_TOKEN": values["salesforce_token"],
            "REVOPS_JIRA_API_TOKEN": values["jira_token"],
            "REVOPS_GENERIC_WEBHOOK_SECRET": values["generic_secret"],
        }
        settings = Settings(
            kafka_bootstrap_servers=kafka, var_dir=var_dir, topics=topics, signing_mode=mode
        )
        seed_warehouse(settings.resolved_warehouse_path, accounts=20, days=365, seed=5)
        asyncio.run(ensure_topics(settings))
        local = LocalStack(settings, ports={name: free_port() for name in SERVICES}, env=env)
        local.start()
        try:
            asyncio.run(local.wait_ready(90))
            yield SecureStack(settings, local, var_dir, sink, ssrf_sink, values)
        finally:
            local.stop()


# Package scope: its services stop when the last test of this package is done, not at the
# end of the session (they would otherwise stay connected to the broker through every later
# test: one such connection once shared a local port with tests/unit/common/test_ports).
@pytest.fixture(scope="package")
def secure_stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStack]:
    with running_secure_stack(kafka, tmp_path_factory.mktemp("security-var")) as stack:
        yield stack
