"""Small value types shared by every contract."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base of every wire model: unknown fields are refused so drift shows up as an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AnalysisType(StrEnum):
    DEAL_QUALITY = "deal_quality"
    CONSUMPTION = "consumption"
    FLEET_SCAN = "fleet_scan"  # every account screened; consumption flows where needed
    DEAL_REVIEW = "deal_review"  # a deal-quality flow for every open opportunity
    RENEWAL_RISK = "renewal_risk"
    RENEWAL_REVIEW = "renewal_review"  # a renewal-risk flow for every account renewing soon


class AgentName(StrEnum):
    INGRESS = "ingress"
    DATA_AGENT = "data_agent"
    DECISION_AGENT = "decision_agent"
    EXECUTION_AGENT = "execution_agent"
    WEBHOOK_PROCESSOR = "webhook_processor"
    DLQ_REPLAY = "dlq_replay"
    FLOW_OUTPUT = "flow_output"


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


#: The one order of priorities, critical first (0). Keyed by `Priority`, a StrEnum, so the
#: plain values ("high") stored in databases look it up as well.
PRIORITY_RANK: dict[str, int] = {p: rank for rank, p in enumerate(Priority)}


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Evidence(Contract):
    """Where a claim comes from: a table row, a call, a metric on a date.

    `source` names the kind ("opportunity_d", "gong_call_f", "consumption_daily_f", ...),
    `ref` the row id (call id, ticket id, opportunity id), `field` the column or metric,
    `date` the day it applies to, `value`/`snippet` what was seen there.
    """

    source: str
    ref: str | None = None
    field: str | None = None
    date: str | None = None
    value: Any = None
    snippet: str | None = None


class Subject(Contract):
    account_id: str
    opportunity_id: str | None = None
    # Display names, so alerts read "Acme / Acme - Expansion", not two ids.
    account_name: str | None = None
    opportunity_name: str | None = None


JsonDict = dict[str, Any]

__all__ = [
    "AgentName",
    "AnalysisType",
    "Contract",
    "Evidence",
    "Field",
    "JsonDict",
    "Priority",
    "Severity",
    "Subject",
    "utcnow",
]
