"""webhooks.yaml is refused at start-up with a message that names the place and the cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.webhook_processor.config import WebhooksConfigError, load_config, parse_config

PACKAGE = Path(__file__).resolve().parents[3] / "services" / "webhook_processor"
PLANNER_DESTINATIONS = {
    "slack_revops_alerts",
    "slack_cs_alerts",
    "email_revops",
    "crm_salesforce",
    "ticket_jira",
}


def refuse(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(WebhooksConfigError) as exc:
        parse_config(text, env=env or {})
    return str(exc.value)


def test_unknown_channel_type() -> None:
    message = refuse("destinations:\n  pager:\n    type: sms\n    url: https://x\n")
    assert message.startswith(
        "webhooks.yaml: destinations.pager.type: unknown channel type 'sms' (known: crm_salesforce,"
    )


def test_unknown_simulated_channel_type() -> None:
    text = "destinations:\n  d:\n    type: outbox_file\n    simulate: {type: fax}\n"
    assert "destinations.d.simulate.type: unknown channel type 'fax'" in refuse(text)


def test_missing_environment_variable() -> None:
    text = "destinations:\n  s:\n    type: slack_webhook\n    url: ${SLACK_URL}\n"
    assert refuse(text).startswith(
        "webhooks.yaml: 1 environment variable not set: SLACK_URL (destinations.s.url); set it"
    )


def test_placeholder_default_and_value() -> None:
    text = (
        "egress: {allow: [{scheme: https, host: hooks.slack.com}]}\n"
        "destinations:\n  s:\n    type: slack_webhook\n"
        "    url: https://hooks.slack.com/${PATH_PART:-services/default}\n"
    )
    assert parse_config(text, env={}).destinations["s"].url.endswith("/services/default")  # type: ignore[union-attr]
    got = parse_config(text, env={"PATH_PART": "T1/B2"}).destinations["s"]
    assert got.url == "https://hooks.slack.com/T1/B2"  # type: ignore[union-attr]


def test_missing_field_and_bad_values() -> None:
    message = refuse("destinations:\n  s:\n    type: slack_webhook\n")
    assert message == "webhooks.yaml: destinations.s.url: Field required"
    message = refuse(
        "destinations:\n  s:\n    type: slack_webhook\n    url: u\n    retry: {max_attempts: 0}\n"
    )
    assert "destinations.s.retry.max_attempts: Input should be greater than or equal to 1" in (
        message
    )
    assert "typo" in refuse(
        "destinations:\n  s:\n    type: slack_webhook\n    url: u\n    typo: 1\n"
    )


def test_no_destinations() -> None:
    assert refuse("version: 1\n") == (
        "webhooks.yaml: destinations: a mapping of at least one destination is required"
    )


def test_demo_file_loads_and_sends_nothing() -> None:
    config = load_config(PACKAGE / "webhooks.demo.yaml", env={})
    assert set(config.destinations) >= PLANNER_DESTINATIONS
    assert {d.type for d in config.destinations.values()} == {"outbox_file"}


def test_production_template_loads_when_environment_is_set() -> None:
    text = (PACKAGE / "webhooks.yaml").read_text()
    with pytest.raises(WebhooksConfigError, match=r"environment variables? not set: REVOPS_"):
        parse_config(text, env={})
    env = {
        "REVOPS_SMTP_HOST": "smtp.example.com",
        "REVOPS_SLACK_REVOPS_WEBHOOK_URL": "https://hooks.slack.com/services/A",
        "REVOPS_SLACK_CS_WEBHOOK_URL": "https://hooks.slack.com/services/B",
        "REVOPS_SLACK_BOT_TOKEN": "xoxb",
        "REVOPS_SMTP_USERNAME": "u",
        "REVOPS_SMTP_PASSWORD": "p",
        "REVOPS_EMAIL_REVOPS_TO": "revops@example.com",
        "REVOPS_SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com",
        "REVOPS_SALESFORCE_ACCESS_TOKEN": "t",
        "REVOPS_JIRA_BASE_URL": "https://acme.atlassian.net",
        "REVOPS_JIRA_USER": "bot",
        "REVOPS_JIRA_API_TOKEN": "t",
        "REVOPS_ZENDESK_BASE_URL": "https://acme.zendesk.com",
        "REVOPS_ZENDESK_USER": "bot",
        "REVOPS_ZENDESK_API_TOKEN": "t",
        "REVOPS_GENERIC_WEBHOOK_SECRET": "s",
    }
    config = parse_config(text, env=env)
    assert set(config.destinations) >= PLANNER_DESTINATIONS
    assert config.retry_policy("crm_salesforce").max_attempts == 8
    assert config.rate_limit("slack_revops_alerts").rate == 1


def test_every_missing_variable_is_named_at_once_with_the_demo_file() -> None:
    production = (PACKAGE / "webhooks.yaml").read_text()
    message = refuse(production)
    for name in (
        "REVOPS_SLACK_REVOPS_WEBHOOK_URL",
        "REVOPS_SMTP_HOST",
        "REVOPS_SALESFORCE_ACCESS_TOKEN",
        "REVOPS_JIRA_API_TOKEN",
        "REVOPS_ZENDESK_API_TOKEN",
        "REVOPS_GENERIC_WEBHOOK_SECRET",
    ):
        assert f"{name} (" in message, name
    assert "REVOPS_JIRA_PROJECT" not in message  # has a default
    assert message.count("REVOPS_SMTP_HOST") == 1  # used twice, named once
    assert "16 environment variables not set" in message
    assert message.endswith("REVOPS_WEBHOOKS_FILE=services/webhook_processor/webhooks.demo.yaml")
    assert "\n" not in message


def test_serve_alone_without_configuration_is_one_line(tmp_path: Path) -> None:
    """`revops serve webhook-processor` with nothing set: one line naming what to set, no
    traceback, before anything connects to Kafka."""
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "REVOPS_VAR_DIR": str(tmp_path), "REVOPS_HTTP_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "serve", "webhook-processor"],
        capture_output=True,
        text=True,
        env=env,
        cwd=PACKAGE.parents[1],
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "16 environment variables not set" in line
    assert "webhooks.demo.yaml" in line
