"""Raw triggers (topic `revops.triggers`) and the enriched request the data agent makes of them.

Seed: "Data Flow & Transformations", stage 1 (Input Processing).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, model_validator

from contracts.analysis_types import ANALYSIS_TYPES
from contracts.common import AnalysisType, Contract, Priority, utcnow


class TriggerType(StrEnum):
    SCHEDULED = "scheduled"
    EVENT = "event"
    MANUAL = "manual"


class TriggerParameters(Contract):
    account_id: str | None = Field(default=None, min_length=1, max_length=64)
    opportunity_id: str | None = Field(default=None, min_length=1, max_length=64)
    analysis_type: AnalysisType

    @model_validator(mode="after")
    def _required_ids(self) -> TriggerParameters:
        spec = ANALYSIS_TYPES[self.analysis_type]
        missing = spec.missing_ids(self.account_id, self.opportunity_id)
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ValueError(
                f"{' and '.join(missing)} {verb} required for analysis_type={self.analysis_type}"
            )
        return self


class RawTrigger(Contract):
    """What any client publishes: the CLI, a cron job, the HTTP ingress, kcat."""

    trigger_type: TriggerType
    parameters: TriggerParameters
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Client-chosen id; the same request_id twice is the same request.",
    )
    requester: str | None = Field(default=None, max_length=128)
    priority: Priority = Priority.MEDIUM


class RequestContext(Contract):
    requester: str
    priority: str = "normal"


class RequestParameters(Contract):
    account_id: str | None = None
    opportunity_id: str | None = None


class EnrichedRequest(Contract):
    """Seed stage 1 output."""

    request_id: str
    timestamp: datetime = Field(default_factory=utcnow)
    analysis_type: AnalysisType
    parameters: RequestParameters
    context: RequestContext
