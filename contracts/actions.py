"""Action jobs (topic `revops.actions`) and their delivery results (`revops.action-results`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from contracts.common import Contract, Priority, utcnow


class Channel(StrEnum):
    SLACK = "slack"
    EMAIL = "email"
    CRM = "crm"
    TICKET = "ticket"
    WEBHOOK = "webhook"


class ActionType(StrEnum):
    NOTIFICATION = "notification"
    DATA_UPDATE = "data_update"
    TICKET = "ticket"
    WEBHOOK = "webhook"


class DeliveryMode(StrEnum):
    IMMEDIATE = "immediate"
    DAILY_DIGEST = "daily_digest"
    WEEKLY_SUMMARY = "weekly_summary"


class ActionJob(Contract):
    """One delivery to one destination. `action_id` is deterministic per request, so a
    re-planned flow yields the same ids and the same Idempotency-Key downstream."""

    action_id: str
    request_id: str
    based_on: str = Field(description="Recommendation or insight id it carries out")
    type: ActionType
    channel: Channel
    destination: str = Field(description="Destination name in webhooks.yaml")
    template: str
    delivery_mode: DeliveryMode = DeliveryMode.IMMEDIATE
    priority: Priority = Priority.MEDIUM
    account_id: str
    opportunity_id: str | None = None
    insight_id: str | None = None
    context: dict[str, Any] = Field(default_factory=dict, description="Template variables")
    sequence: int = 0
    updates_ticket: str | None = Field(
        default=None,
        description="Ticket jobs: the action_id of the job that opened the ticket this job "
        "updates (None: open a new ticket)",
    )
    ticket_id: str | None = Field(
        default=None,
        description="The opened ticket's id on the far side (Jira key, Zendesk id), when the "
        "planner already knew it",
    )


class ActionStatus(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    QUEUED = "queued"  # accepted for a digest, sent later
    SKIPPED = "skipped"


class ActionResult(Contract):
    action_id: str
    request_id: str
    based_on: str
    type: ActionType
    channel: Channel
    destination: str
    target: str = Field(description="Seed's `target`: slack, email, salesforce, jira, ...")
    status: ActionStatus
    attempts: int = 1
    response_code: int | None = None
    response: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    latency_ms: float | None = None
    finished_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def of_job(
        cls, job: ActionJob, target: str, status: ActionStatus, **fields: Any
    ) -> ActionResult:
        """The result of delivering `job`: its ids and kind copied, the outcome in `fields`
        (attempts, response_code, response, error, latency_ms)."""
        return cls(
            action_id=job.action_id,
            request_id=job.request_id,
            based_on=job.based_on,
            type=job.type,
            channel=job.channel,
            destination=job.destination,
            target=target,
            status=status,
            **fields,
        )
