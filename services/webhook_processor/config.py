"""Destinations config (`webhooks.yaml`): named destinations, each with a channel type,
its endpoint settings, and optional rate-limit / timeout / breaker / retry overrides.

Loading is strict because a bad file must stop the service at start-up, not at 3 a.m. when
the first alert is sent: `${ENV}` placeholders whose variable is unset, an unknown channel
type, a missing field, or a URL outside the egress allow-list are refused with a message
that names the exact place in the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.actions import Channel
from services.common.retry import RetryPolicy
from services.common.settings import get_settings


class WebhooksConfigError(ValueError):
    """The destinations file cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- policies -------------------------------------------------------------------------------


class RetryOverride(_Strict):
    max_attempts: int | None = Field(default=None, ge=1)
    initial_delay_s: float | None = Field(default=None, ge=0)
    max_delay_s: float | None = Field(default=None, ge=0)
    jitter: float | None = Field(default=None, ge=0, le=1)


class BreakerOverride(_Strict):
    failure_threshold: int | None = Field(default=None, ge=1)
    success_threshold: int | None = Field(default=None, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)


class BreakerPolicy(_Strict):
    failure_threshold: int = Field(ge=1)
    success_threshold: int = Field(ge=1)
    timeout_s: float = Field(gt=0)


class RateLimit(_Strict):
    """At most `rate` requests per `period_s` seconds (token bucket, aiolimiter)."""

    rate: float = Field(gt=0)
    period_s: float = Field(default=1.0, gt=0)


class Defaults(_Strict):
    """Applied to every destination unless it overrides them. Unset values come from the
    service settings (`REVOPS_MAX_ATTEMPTS`, `REVOPS_BREAKER_*`, ...)."""

    timeout_s: float = Field(default=10.0, gt=0)
    rate_limit: RateLimit = Field(default_factory=lambda: RateLimit(rate=20, period_s=1))
    retry: RetryOverride = Field(default_factory=RetryOverride)
    breaker: BreakerOverride = Field(default_factory=BreakerOverride)
    concurrency: int = Field(default=4, ge=1, description="Lanes; one account -> one lane")
    max_pending_age_s: float = Field(default=3600.0, gt=0)


class BasicAuth(_Strict):
    username: str
    password: str


class AllowRule(_Strict):
    scheme: Literal["http", "https", "smtp"]
    host: str = Field(description="Exact host, or '*.example.com' for any subdomain")
    port: int | None = Field(default=None, description="Default: the scheme's port")


class EgressConfig(_Strict):
    allow: list[AllowRule] = Field(default_factory=list)
    allow_private: list[str] = Field(
        default_factory=list,
        description="CIDRs or IPs that may be reached although private/loopback/link-local",
    )


# --- destinations ---------------------------------------------------------------------------


class _DestinationBase(_Strict):
    timeout_s: float | None = Field(default=None, gt=0)
    rate_limit: RateLimit | None = None
    retry: RetryOverride = Field(default_factory=RetryOverride)
    breaker: BreakerOverride = Field(default_factory=BreakerOverride)
    concurrency: int | None = Field(default=None, ge=1)
    max_pending_age_s: float | None = Field(default=None, gt=0)
    description: str = ""


class _HttpDestination(_DestinationBase):
    headers: dict[str, str] = Field(default_factory=dict)
    bearer_token: str | None = None
    basic_auth: BasicAuth | None = None


class SlackWebhookDestination(_HttpDestination):
    type: Literal["slack_webhook"]
    url: str


class SlackApiDestination(_HttpDestination):
    type: Literal["slack_api"]
    url: str = "https://slack.com/api/chat.postMessage"
    channel: str


class EmailSmtpDestination(_DestinationBase):
    type: Literal["email_smtp"]
    host: str
    port: int = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    sender: str
    to: list[str] = Field(min_length=1)
    cc: list[str] = Field(default_factory=list)


class SalesforceDestination(_HttpDestination):
    type: Literal["crm_salesforce"]
    instance_url: str
    api_version: str = Field(default="v61.0", pattern=r"^v\d+\.\d$")
    sobject: str = "Opportunity"


class TicketDestination(_HttpDestination):
    """`ticket_jira` posts a Jira issue, `ticket_zendesk` a Zendesk ticket; the body shape
    is the preset template `ticket/preset_<jira|zendesk>.json.j2` fed with `options`.
    An update of an opened ticket is a PUT to `update_url` (`{ticket_id}` in it) with
    `ticket/preset_<jira|zendesk>_update.json.j2`; by default the REST API's own address of
    the ticket, derived from `url`."""

    type: Literal["ticket_jira", "ticket_zendesk"]
    url: str
    update_url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _update_url(self) -> TicketDestination:
        if self.update_url is None:
            self.update_url = _default_update_url(self.type, self.url)
        if "{ticket_id}" not in self.update_url:
            raise ValueError("update_url must contain {ticket_id}")
        return self

    def ticket_url(self, ticket_id: str) -> str:
        assert self.update_url is not None  # set by the validator
        return self.update_url.replace("{ticket_id}", quote(ticket_id, safe=""))


def _default_update_url(kind: str, url: str) -> str:
    """Jira: <...>/rest/api/2/issue -> <...>/rest/api/2/issue/{ticket_id}; Zendesk:
    <...>/api/v2/tickets.json -> <...>/api/v2/tickets/{ticket_id}.json."""
    base = url.rstrip("/")
    if kind == "ticket_jira" and base.endswith("/issue"):
        return base + "/{ticket_id}"
    if kind == "ticket_zendesk" and base.endswith("/tickets.json"):
        return base.removesuffix(".json") + "/{ticket_id}.json"
    raise ValueError(
        f"cannot derive where to update a ticket from url {url!r}; set update_url "
        "(with {ticket_id} in it)"
    )


class GenericWebhookDestination(_HttpDestination):
    type: Literal["generic_webhook"]
    url: str
    secret: str = Field(min_length=1, description="HMAC-SHA256 key for X-Signature")


SimulatedDestination = Annotated[
    SlackWebhookDestination
    | SlackApiDestination
    | EmailSmtpDestination
    | SalesforceDestination
    | TicketDestination
    | GenericWebhookDestination,
    Field(discriminator="type"),
]


class OutboxFileDestination(_DestinationBase):
    """Writes the exact request `simulate` would send to a JSONL file instead of sending it
    (the embedded demo has no real Slack or CRM)."""

    type: Literal["outbox_file"]
    simulate: SimulatedDestination
    file: Path | None = Field(default=None, description="Default: <outbox_dir>/<name>.jsonl")


Destination = Annotated[
    SlackWebhookDestination
    | SlackApiDestination
    | EmailSmtpDestination
    | SalesforceDestination
    | TicketDestination
    | GenericWebhookDestination
    | OutboxFileDestination,
    Field(discriminator="type"),
]

CHANNEL_TYPES: dict[str, Channel] = {
    "slack_webhook": Channel.SLACK,
    "slack_api": Channel.SLACK,
    "email_smtp": Channel.EMAIL,
    "crm_salesforce": Channel.CRM,
    "ticket_jira": Channel.TICKET,
    "ticket_zendesk": Channel.TICKET,
    "generic_webhook": Channel.WEBHOOK,
    "outbox_file": Channel.WEBHOOK,  # really: the channel of what it simulates
}


class WebhooksConfig(_Strict):
    version: int = 1
    defaults: Defaults = Field(default_factory=Defaults)
    egress: EgressConfig = Field(default_factory=EgressConfig)
    destinations: dict[str, Destination]

    def retry_policy(self, name: str) -> RetryPolicy:
        s = get_settings()
        merged: dict[str, Any] = {
            "max_attempts": s.max_attempts,
            "initial_delay_s": s.retry_initial_delay_s,
            "max_delay_s": s.retry_max_delay_s,
            "jitter": s.retry_jitter,
        }
        for override in (self.defaults.retry, self.destinations[name].retry):
            merged.update(override.model_dump(exclude_none=True))
        return RetryPolicy(**merged)

    def breaker_policy(self, name: str) -> BreakerPolicy:
        s = get_settings()
        merged = {
            "failure_threshold": s.breaker_failure_threshold,
            "success_threshold": s.breaker_success_threshold,
            "timeout_s": s.breaker_timeout_s,
        }
        for override in (self.defaults.breaker, self.destinations[name].breaker):
            merged.update(override.model_dump(exclude_none=True))
        return BreakerPolicy.model_validate(merged)

    def rate_limit(self, name: str) -> RateLimit:
        return self.destinations[name].rate_limit or self.defaults.rate_limit

    def timeout_s(self, name: str) -> float:
        return self.destinations[name].timeout_s or self.defaults.timeout_s

    def concurrency(self, name: str) -> int:
        return self.destinations[name].concurrency or self.defaults.concurrency

    def max_pending_age_s(self, name: str) -> float:
        return self.destinations[name].max_pending_age_s or self.defaults.max_pending_age_s


def effective(dest: Destination) -> Destination:
    """What is really built: an outbox destination builds the request it simulates."""
    return dest.simulate if isinstance(dest, OutboxFileDestination) else dest


def channel_of(dest: Destination) -> Channel:
    return CHANNEL_TYPES[effective(dest).type]


# --- loading --------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# What a newcomer runs instead when the production destinations are not configured.
DEMO_CONFIG = Path(__file__).with_name("webhooks.demo.yaml")


def _shown(path: Path) -> str:
    """Relative to the working directory when inside it (as the README writes paths)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def expand_env(value: Any, env: dict[str, str], where: str = "") -> Any:
    """Replace `${NAME}` / `${NAME:-default}` in every string of the parsed tree (after YAML
    parsing, so a variable's value can never change the file's structure). Every unset
    variable is reported in one error, not the first one only."""
    missing: dict[str, str] = {}
    expanded = _expand(value, env, where, missing)
    if missing:
        names = ", ".join(f"{name} ({place})" for name, place in missing.items())
        raise WebhooksConfigError(
            f"{len(missing)} environment variable{'s' if len(missing) > 1 else ''} not set: "
            f"{names}; set {'them' if len(missing) > 1 else 'it'}, or use the demo "
            f"destinations, which send nothing and write each request to the local outbox: "
            f"REVOPS_WEBHOOKS_FILE={_shown(DEMO_CONFIG)}"
        )
    return expanded


def _expand(value: Any, env: dict[str, str], where: str, missing: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: _expand(v, env, f"{where}.{k}" if where else str(k), missing)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, env, f"{where}[{i}]", missing) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing.setdefault(name, where)
        return ""

    return _PLACEHOLDER.sub(substitute, value)


def _check_channel_types(raw: dict[str, Any]) -> None:
    destinations = raw.get("destinations")
    if not isinstance(destinations, dict) or not destinations:
        raise WebhooksConfigError("destinations: a mapping of at least one destination is required")
    known = ", ".join(sorted(CHANNEL_TYPES))
    for name, dest in destinations.items():
        if not isinstance(dest, dict):
            raise WebhooksConfigError(f"destinations.{name}: must be a mapping")
        kinds = [("type", dest.get("type"))]
        if dest.get("type") == "outbox_file" and isinstance(dest.get("simulate"), dict):
            kinds.append(("simulate.type", dest["simulate"].get("type")))
        for field, kind in kinds:
            if kind not in CHANNEL_TYPES or (field == "simulate.type" and kind == "outbox_file"):
                raise WebhooksConfigError(
                    f"destinations.{name}.{field}: unknown channel type {kind!r} (known: {known})"
                )


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        # Drop pydantic's union-branch names (the channel type) from the path.
        loc = ".".join(str(p) for p in err["loc"] if str(p) not in CHANNEL_TYPES)
        lines.append(f"{loc}: {err['msg']}")
    return "; ".join(lines)


def parse_config(
    text: str, *, source: str = "webhooks.yaml", env: dict[str, str] | None = None
) -> WebhooksConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WebhooksConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise WebhooksConfigError(f"{source}: the top level must be a mapping")
    try:
        raw = expand_env(raw, dict(os.environ) if env is None else env)
        _check_channel_types(raw)
        config = WebhooksConfig.model_validate(raw)
    except WebhooksConfigError as exc:
        raise WebhooksConfigError(f"{source}: {exc}") from None
    except ValidationError as exc:
        raise WebhooksConfigError(f"{source}: {_format_validation_error(exc)}") from None

    from services.webhook_processor.egress import EgressDenied, EgressPolicy, destination_urls

    policy = EgressPolicy(config.egress)
    for name, dest in config.destinations.items():
        for url in destination_urls(dest):
            try:
                policy.check_allowed(url)
            except EgressDenied as exc:
                raise WebhooksConfigError(f"{source}: destinations.{name}: {exc.message}") from None
    from services.webhook_processor.credentials import register_credentials

    register_credentials(config)  # before any delivery can quote one in an error
    return config


def load_config(path: Path | None = None, *, env: dict[str, str] | None = None) -> WebhooksConfig:
    """Load and validate the destinations file (default: `Settings.webhooks_file`)."""
    path = path or get_settings().webhooks_file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WebhooksConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_config(text, source=str(path), env=env)
