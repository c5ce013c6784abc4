"""Wire contracts: the only language the services share. JSON Schemas in `schemas/`."""

from contracts.actions import (
    ActionJob,
    ActionResult,
    ActionStatus,
    ActionType,
    Channel,
    DeliveryMode,
)
from contracts.analysis import (
    AnalysisBody,
    AnalysisResults,
    Flag,
    FlagType,
    InsightCategory,
    Recommendation,
    ScoreDetail,
    ScoreFactor,
)
from contracts.common import AgentName, AnalysisType, Evidence, Priority, Severity, Subject
from contracts.dataset import (
    AnalyticalDataset,
    CustomerClass,
    DataCollection,
    Dataset,
    PreliminaryFinding,
)
from contracts.envelope import (
    CONTRACT_VERSION,
    SUPPORTED_VERSIONS,
    DeadLetterInfo,
    Envelope,
    ErrorEnvelope,
    ErrorInfo,
    Metadata,
)
from contracts.execution import ExecutionResults, FlowOutput
from contracts.trigger import EnrichedRequest, RawTrigger, TriggerType

__all__ = [
    "CONTRACT_VERSION",
    "SUPPORTED_VERSIONS",
    "ActionJob",
    "ActionResult",
    "ActionStatus",
    "ActionType",
    "AgentName",
    "AnalysisBody",
    "AnalysisResults",
    "AnalysisType",
    "AnalyticalDataset",
    "Channel",
    "CustomerClass",
    "DataCollection",
    "Dataset",
    "DeadLetterInfo",
    "DeliveryMode",
    "EnrichedRequest",
    "Envelope",
    "ErrorEnvelope",
    "ErrorInfo",
    "Evidence",
    "ExecutionResults",
    "Flag",
    "FlagType",
    "FlowOutput",
    "InsightCategory",
    "Metadata",
    "PreliminaryFinding",
    "Priority",
    "RawTrigger",
    "Recommendation",
    "ScoreDetail",
    "ScoreFactor",
    "Severity",
    "Subject",
    "TriggerType",
]
