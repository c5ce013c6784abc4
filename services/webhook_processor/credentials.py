"""The credentials a destinations file carries, made known to the secret redactor.

Values come from `${ENV}` placeholders, not from a `SecretsProvider`, so nobody registered
them: a destination that echoes its token in an error answer (or a Slack webhook URL, whose
path *is* the credential, quoted in a message) would otherwise reach the delivery error, the
DLQ record, the action result and the log line verbatim.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from services.common.security.redaction import is_sensitive_key, register_secret
from services.webhook_processor.config import (
    Destination,
    SlackWebhookDestination,
    WebhooksConfig,
    effective,
)


def credential_values(dest: Destination) -> Iterator[str]:
    """Every secret value of one destination (of what it simulates, for an outbox one)."""
    dest = effective(dest)
    for name in ("bearer_token", "password", "secret"):
        value = getattr(dest, name, None)
        if isinstance(value, str) and value:
            yield value
    basic = getattr(dest, "basic_auth", None)
    if basic is not None:
        yield basic.password
    for header, value in (getattr(dest, "headers", None) or {}).items():
        if is_sensitive_key(header) and value:
            yield value
    if isinstance(dest, SlackWebhookDestination):
        # https://hooks.slack.com/services/T…/B…/<token>: the path grants posting.
        path = urlsplit(dest.url).path
        yield dest.url
        yield path
        yield path.rstrip("/").rsplit("/", 1)[-1]


def register_credentials(config: WebhooksConfig) -> None:
    for dest in config.destinations.values():
        for value in credential_values(dest):
            register_secret(value)
