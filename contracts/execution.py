"""Execution results and the final flow output (topic `revops.flow-results`).

Seed: "Data Flow & Transformations", stages 4 and 5.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from contracts.common import AnalysisType, Contract, Subject, utcnow


class ActionExecuted(Contract):
    id: str
    based_on: str
    type: str
    target: str
    status: str
    response: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class PersistentStorage(Contract):
    database: str
    table: str
    record_id: str


class ExecutionBody(Contract):
    status: str  # complete | partial | failed
    timestamp: datetime = Field(default_factory=utcnow)
    actions_executed: list[ActionExecuted] = Field(default_factory=list)
    persistent_storage: PersistentStorage
    compensations: list[str] = Field(default_factory=list)


class ExecutionSummary(Contract):
    total_actions: int = 0
    successful: int = 0
    failed: int = 0
    queued: int = 0
    notifications_sent: int = 0
    data_updates: int = 0


class ExecutionResults(Contract):
    """Seed stage 4 output."""

    request_id: str
    execution_results: ExecutionBody
    summary: ExecutionSummary


class ResultsLocation(Contract):
    database: str
    table: str
    query: str


class FlowOutput(Contract):
    """Seed stage 5 output, plus what a reader needs without a second lookup."""

    flow_execution_id: str
    request_id: str
    status: str  # success | partial | failed
    execution_time_ms: int
    summary: str
    results_location: ResultsLocation
    analysis_type: AnalysisType
    subject: Subject
    scores: dict[str, int] = Field(default_factory=dict)
    insight_ids: list[str] = Field(default_factory=list)
    execution: ExecutionResults
