"""The ingress's own HTTP models (request bodies other than `RawTrigger`, and responses).

They are the single source of the OpenAPI document (`openapi.py`) and of validation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import FlowOutput


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class OpportunityStageChange(_Strict):
    """The Platform Event payload (`Opportunity_Stage_Change__e`) with its API field names."""

    opportunity_id: str = Field(alias="OpportunityId__c", min_length=1, max_length=64)
    account_id: str = Field(alias="AccountId__c", min_length=1, max_length=64)
    old_stage: str | None = Field(default=None, alias="OldStage__c", max_length=80)
    new_stage: str = Field(alias="NewStage__c", min_length=1, max_length=80)
    changed_at: datetime = Field(alias="ChangedAt__c")
    created_date: datetime | None = Field(default=None, alias="CreatedDate")
    created_by_id: str | None = Field(default=None, alias="CreatedById", max_length=64)


class PlatformEventInfo(_Strict):
    replay_id: int | None = Field(default=None, alias="replayId")
    event_uuid: str | None = Field(default=None, alias="EventUuid", max_length=64)


class SalesforceOpportunityEvent(_Strict):
    """What Salesforce (a Flow HTTP callout or a Pub/Sub relay) posts: the event envelope."""

    schema_id: str | None = Field(default=None, alias="schema", max_length=128)
    payload: OpportunityStageChange
    event: PlatformEventInfo | None = None


class TriggerAccepted(_Strict):
    request_id: str
    status_url: str


class EventIgnored(_Strict):
    status: Literal["ignored"] = "ignored"
    reason: str


class RejectionInfo(_Strict):
    """Why the pipeline rejected the request (the dead letter that ended its flow)."""

    code: str = Field(description="the DLQ error code, e.g. UNKNOWN_SUBJECT")
    reason: str
    dead_letter: str = Field(description="<dlq topic>:<partition>:<offset> (revops dlq show)")


class FlowStatus(_Strict):
    request_id: str
    status: Literal["accepted", "complete", "rejected"]
    flow: FlowOutput | None
    rejection: RejectionInfo | None = None


class FieldProblem(_Strict):
    loc: str
    msg: str
    type: str


class Problem(_Strict):
    """RFC 9457 problem details; `errors` lists schema problems (values are never echoed)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str | None = None
    errors: list[FieldProblem] | None = None
