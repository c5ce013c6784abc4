"""Channel handlers: turn a message (a job, or a digest of jobs) into the exact request one
destination type expects. Rendering is the templates' job; the shapes of the far systems
(Slack, SMTP, Salesforce REST, Jira/Zendesk, signed webhooks) live here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from contracts.actions import ActionJob
from services.webhook_processor.config import (
    Destination,
    EmailSmtpDestination,
    GenericWebhookDestination,
    OutboxFileDestination,
    SalesforceDestination,
    SlackApiDestination,
    SlackWebhookDestination,
    TicketDestination,
    _HttpDestination,
    effective,
)
from services.webhook_processor.specs import DeliverySpec, EmailSpec, HttpRequestSpec, json_bytes
from services.webhook_processor.templates import PermanentDeliveryError, TemplateRenderer

IDEMPOTENCY_HEADER = "Idempotency-Key"
DIGEST_TEMPLATE = "digest"

# The seed's `target` of an ActionResult, per destination type.
TARGETS = {
    "slack_webhook": "slack",
    "slack_api": "slack",
    "email_smtp": "email",
    "crm_salesforce": "salesforce",
    "ticket_jira": "jira",
    "ticket_zendesk": "zendesk",
    "generic_webhook": "webhook",
}
DIGEST_TYPES = frozenset({"slack_webhook", "slack_api", "email_smtp"})


@dataclass(frozen=True)
class Message:
    """One thing to send: `template` rendered with `variables`, keyed for idempotency."""

    idempotency_key: str
    template: str
    variables: dict[str, Any]
    opportunity_id: str | None = None
    # A ticket update: the action that opened the ticket, and the ticket's id when known.
    updates_ticket: str | None = None
    ticket_id: str | None = None

    @classmethod
    def for_job(cls, job: ActionJob, destination: str, ticket_id: str | None = None) -> Message:
        """`ticket_id`: the id of the ticket `job.updates_ticket` opened, if the job does not
        carry it (the engine looks it up in its own records)."""
        variables = {
            **job.context,
            "job": job.model_dump(mode="json"),
            "destination": destination,
            "now": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return cls(
            job.action_id,
            job.template,
            variables,
            job.opportunity_id,
            job.updates_ticket,
            job.ticket_id or ticket_id,
        )

    @classmethod
    def for_digest(
        cls, digest_id: str, mode: str, destination: str, jobs: list[ActionJob]
    ) -> Message:
        items = [{**job.context, "job": job.model_dump(mode="json")} for job in jobs]
        variables = {
            "items": items,
            "mode": mode,
            "destination": destination,
            "now": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return cls(digest_id, DIGEST_TEMPLATE, variables)


def target_of(dest: Destination) -> str:
    return TARGETS[effective(dest).type]


def supports_digest(dest: Destination) -> bool:
    return effective(dest).type in DIGEST_TYPES


def _http_headers(dest: _HttpDestination, key: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json; charset=utf-8", **dest.headers}
    if dest.bearer_token:
        headers["Authorization"] = f"Bearer {dest.bearer_token}"
    elif dest.basic_auth:
        pair = f"{dest.basic_auth.username}:{dest.basic_auth.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    headers[IDEMPOTENCY_HEADER] = key
    return headers


def _require_object(value: Any, template: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PermanentDeliveryError(
            "template_render_failed", f"{template} must render a JSON object"
        )
    return value


def _slack(
    dest: SlackWebhookDestination | SlackApiDestination, msg: Message, r: TemplateRenderer
) -> HttpRequestSpec:
    name = f"slack/{msg.template}.json.j2"
    payload = _require_object(r.render_json(name, msg.variables), name)
    if isinstance(dest, SlackApiDestination):
        payload.setdefault("channel", dest.channel)
    return HttpRequestSpec(
        "POST", dest.url, _http_headers(dest, msg.idempotency_key), json_bytes(payload)
    )


_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def message_id(key: str) -> str:
    """A stable RFC 5322 Message-ID from the idempotency key, so a resend is recognisable."""
    return f"<{_MSGID_UNSAFE.sub('_', key)}@revops-ai.local>"


def _email(dest: EmailSmtpDestination, msg: Message, r: TemplateRenderer) -> EmailSpec:
    base = f"email/{msg.template}"
    subject = r.render(f"{base}.subject.j2", msg.variables).strip()
    text = r.render(f"{base}.txt.j2", msg.variables)
    html = r.render(f"{base}.html.j2", msg.variables)
    email = EmailMessage()
    email["Subject"] = subject
    email["From"] = dest.sender
    email["To"] = ", ".join(dest.to)
    if dest.cc:
        email["Cc"] = ", ".join(dest.cc)
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = message_id(msg.idempotency_key)
    email["X-Idempotency-Key"] = msg.idempotency_key
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    return EmailSpec(
        host=dest.host,
        port=dest.port,
        starttls=dest.starttls,
        ssl=dest.ssl,
        username=dest.username,
        password=dest.password,
        sender=dest.sender,
        recipients=[*dest.to, *dest.cc],
        message=email,
    )


def _salesforce(dest: SalesforceDestination, msg: Message, r: TemplateRenderer) -> HttpRequestSpec:
    if not msg.opportunity_id:
        raise PermanentDeliveryError(
            "payload_missing_field", "a CRM update needs the job's opportunity_id"
        )
    name = f"crm/{msg.template}.json.j2"
    fields = _require_object(r.render_json(name, msg.variables), name)
    url = (
        f"{dest.instance_url.rstrip('/')}/services/data/{dest.api_version}"
        f"/sobjects/{quote(dest.sobject, safe='')}/{quote(msg.opportunity_id, safe='')}"
    )
    return HttpRequestSpec(
        "PATCH", url, _http_headers(dest, msg.idempotency_key), json_bytes(fields)
    )


def _ticket(dest: TicketDestination, msg: Message, r: TemplateRenderer) -> HttpRequestSpec:
    if msg.updates_ticket is not None:
        return _ticket_update(dest, msg, r)
    name = f"ticket/{msg.template}.json.j2"
    ticket = _require_object(r.render_json(name, msg.variables), name)
    preset_name = f"ticket/preset_{_preset(dest)}.json.j2"
    body = r.render_json(
        preset_name,
        {
            "ticket": ticket,
            "options": dest.options,
            "job": msg.variables.get("job", {}),
            "idempotency_key": msg.idempotency_key,
        },
    )
    body = _require_object(body, preset_name)
    return HttpRequestSpec(
        "POST", dest.url, _http_headers(dest, msg.idempotency_key), json_bytes(body)
    )


def _ticket_update(dest: TicketDestination, msg: Message, r: TemplateRenderer) -> HttpRequestSpec:
    """A comment (and the current priority) on the ticket an earlier job opened."""
    if not msg.ticket_id:
        raise PermanentDeliveryError(
            "ticket_not_opened",
            f"this updates the ticket opened by action {msg.updates_ticket}, which has no "
            "ticket id here (it failed or is not delivered yet); replay that action first",
        )
    name = f"ticket/{msg.template}.json.j2"
    update = _require_object(r.render_json(name, msg.variables), name)
    preset_name = f"ticket/preset_{_preset(dest)}_update.json.j2"
    body = r.render_json(
        preset_name,
        {"update": update, "options": dest.options, "idempotency_key": msg.idempotency_key},
    )
    body = _require_object(body, preset_name)
    return HttpRequestSpec(
        "PUT",
        dest.ticket_url(msg.ticket_id),
        _http_headers(dest, msg.idempotency_key),
        json_bytes(body),
    )


def _preset(dest: TicketDestination) -> str:
    return "jira" if dest.type == "ticket_jira" else "zendesk"


def ticket_id_of(dest: Destination, response: dict[str, Any], key: str) -> str | None:
    """The id of the ticket a delivery opened, from the destination's answer: Jira's issue
    key, Zendesk's ticket id. The demo outbox opens nothing: its record, named by the
    Idempotency-Key, stands for the ticket."""
    if isinstance(dest, OutboxFileDestination):
        return key
    ticket = response.get("ticket")
    value = response.get("key") or response.get("id")
    if isinstance(ticket, dict):
        value = ticket.get("id", value)
    return None if value is None else str(value)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _generic(dest: GenericWebhookDestination, msg: Message, r: TemplateRenderer) -> HttpRequestSpec:
    name = f"webhook/{msg.template}.json.j2"
    body = json_bytes(r.render_json(name, msg.variables))
    timestamp = str(int(time.time()))
    headers = _http_headers(dest, msg.idempotency_key)
    headers["X-Timestamp"] = timestamp
    headers["X-Signature"] = sign(dest.secret, timestamp, body)
    return HttpRequestSpec("POST", dest.url, headers, body)


def build(dest: Destination, msg: Message, renderer: TemplateRenderer) -> DeliverySpec:
    """The exact request `dest` receives for `msg` (an outbox destination: the request it
    simulates). Raises PermanentDeliveryError when the message cannot be built."""
    if isinstance(dest, OutboxFileDestination):
        return build(dest.simulate, msg, renderer)
    match dest:
        case SlackWebhookDestination() | SlackApiDestination():
            return _slack(dest, msg, renderer)
        case EmailSmtpDestination():
            return _email(dest, msg, renderer)
        case SalesforceDestination():
            return _salesforce(dest, msg, renderer)
        case TicketDestination():
            return _ticket(dest, msg, renderer)
        case GenericWebhookDestination():
            return _generic(dest, msg, renderer)
    raise AssertionError(f"unhandled destination {dest!r}")
