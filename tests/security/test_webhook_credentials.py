"""The webhook processor's own credentials (from `${ENV}` placeholders) are redacted wherever
they could surface: a delivery error quoting the destination's answer, the recorded answer,
and log lines (found by test_pipeline_secrets; this pins the two places that were fixed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.common.security.redaction import REDACTED, clear_registered_secrets, redact_text
from services.webhook_processor.config import AllowRule, EgressConfig
from services.webhook_processor.config_file import parse_config
from services.webhook_processor.egress import EgressPolicy
from services.webhook_processor.rendering import PermanentDeliveryError
from services.webhook_processor.specs import HttpRequestSpec
from services.webhook_processor.transports import HttpTransport
from tests.support import HttpRecorder

CONFIG = """
egress:
  allow: [{scheme: https, host: hooks.slack.com}, {scheme: https, host: "*.atlassian.net"}]
destinations:
  slack: {type: slack_webhook, url: "https://hooks.slack.com/services/T1/B2/${SLACK_TOKEN}"}
  jira:
    type: ticket_jira
    url: https://acme.atlassian.net/rest/api/2/issue
    basic_auth: {username: bot, password: "${JIRA_TOKEN}"}
    headers: {X-Api-Key: "${API_KEY}"}
  hook:
    type: outbox_file
    simulate: {type: generic_webhook, url: "https://hooks.slack.com/x", secret: "${HOOK_SECRET}"}
"""
ENV = {
    "SLACK_TOKEN": "sl4ckT0kenValue",
    "JIRA_TOKEN": "j1raT0kenValue",
    "API_KEY": "ap1KeyValue",
    "HOOK_SECRET": "h00kSecretValue",
}


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    clear_registered_secrets()
    yield
    clear_registered_secrets()


def test_loading_the_config_registers_every_credential() -> None:
    parse_config(CONFIG, env=ENV)
    text = " | ".join(f"echo {v}" for v in ENV.values())
    redacted = redact_text(text)
    assert all(v not in redacted for v in ENV.values())
    assert redacted.count(REDACTED) == len(ENV)


async def test_a_destination_echoing_its_credential_is_quoted_redacted() -> None:
    parse_config(CONFIG, env=ENV)
    with HttpRecorder() as sink:
        sink.respond("/x", status=403, json={"error": f"bad token {ENV['JIRA_TOKEN']}"})
        rule = AllowRule(scheme="http", host="127.0.0.1", port=sink.port)
        policy = EgressPolicy(EgressConfig(allow=[rule], allow_private=["127.0.0.1/32"]))
        async with HttpTransport(policy) as transport:
            spec = HttpRequestSpec("POST", sink.url("/x"), {}, b"{}")
            with pytest.raises(PermanentDeliveryError) as exc:
                await transport.send(spec, 5.0)
    assert ENV["JIRA_TOKEN"] not in exc.value.message
    assert exc.value.message == f'HTTP 403: {{"error": "bad token {REDACTED}"}}'
