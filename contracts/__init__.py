"""Wire contracts: the only language the services share. JSON Schemas in `schemas/`.

Names are imported on first use (PEP 562): `from contracts import FlowOutput` loads only the
modules it needs, so a command that reads one model does not build all of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        DatasetBase,
        DatasetMessage,
        PreliminaryFinding,
    )
    from contracts.dataset_columns import (
        DATASET_SCHEMA_VERSION,
        ColumnarAnalyticalDataset,
        read_dataset,
        to_columnar,
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

_EXPORTS = {
    "ActionJob": "contracts.actions",
    "ActionResult": "contracts.actions",
    "ActionStatus": "contracts.actions",
    "ActionType": "contracts.actions",
    "Channel": "contracts.actions",
    "DeliveryMode": "contracts.actions",
    "AnalysisBody": "contracts.analysis",
    "AnalysisResults": "contracts.analysis",
    "Flag": "contracts.analysis",
    "FlagType": "contracts.analysis",
    "InsightCategory": "contracts.analysis",
    "Recommendation": "contracts.analysis",
    "ScoreDetail": "contracts.analysis",
    "ScoreFactor": "contracts.analysis",
    "AgentName": "contracts.common",
    "AnalysisType": "contracts.common",
    "Evidence": "contracts.common",
    "Priority": "contracts.common",
    "Severity": "contracts.common",
    "Subject": "contracts.common",
    "AnalyticalDataset": "contracts.dataset",
    "CustomerClass": "contracts.dataset",
    "DataCollection": "contracts.dataset",
    "Dataset": "contracts.dataset",
    "DatasetBase": "contracts.dataset",
    "DatasetMessage": "contracts.dataset",
    "DATASET_SCHEMA_VERSION": "contracts.dataset_columns",
    "ColumnarAnalyticalDataset": "contracts.dataset_columns",
    "read_dataset": "contracts.dataset_columns",
    "to_columnar": "contracts.dataset_columns",
    "PreliminaryFinding": "contracts.dataset",
    "CONTRACT_VERSION": "contracts.envelope",
    "SUPPORTED_VERSIONS": "contracts.envelope",
    "DeadLetterInfo": "contracts.envelope",
    "Envelope": "contracts.envelope",
    "ErrorEnvelope": "contracts.envelope",
    "ErrorInfo": "contracts.envelope",
    "Metadata": "contracts.envelope",
    "ExecutionResults": "contracts.execution",
    "FlowOutput": "contracts.execution",
    "EnrichedRequest": "contracts.trigger",
    "RawTrigger": "contracts.trigger",
    "TriggerType": "contracts.trigger",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'contracts' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CONTRACT_VERSION",
    "DATASET_SCHEMA_VERSION",
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
    "ColumnarAnalyticalDataset",
    "CustomerClass",
    "DataCollection",
    "Dataset",
    "DatasetBase",
    "DatasetMessage",
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
    "read_dataset",
    "to_columnar",
]
