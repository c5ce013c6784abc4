"""Writes the JSON Schema of every wire model to `contracts/schemas/` (`make schemas`)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from contracts import (
    ActionJob,
    ActionResult,
    AnalysisResults,
    AnalyticalDataset,
    EnrichedRequest,
    Envelope,
    ErrorEnvelope,
    ExecutionResults,
    FlowOutput,
    RawTrigger,
)
from contracts.dataset_columns import ColumnarAnalyticalDataset

SCHEMA_DIR = Path(__file__).parent / "schemas"

MODELS: dict[str, type[BaseModel]] = {
    "raw_trigger": RawTrigger,
    "envelope": Envelope,
    "error_envelope": ErrorEnvelope,
    "enriched_request": EnrichedRequest,
    "analytical_dataset": AnalyticalDataset,  # schema_version 1, read during the upgrade
    "analytical_dataset_columns": ColumnarAnalyticalDataset,  # schema_version 2, published
    "analysis_results": AnalysisResults,
    "action_job": ActionJob,
    "action_result": ActionResult,
    "execution_results": ExecutionResults,
    "flow_output": FlowOutput,
}


def render(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, model in MODELS.items():
        (SCHEMA_DIR / f"{name}.json").write_text(render(model))
    print(f"wrote {len(MODELS)} schemas to {SCHEMA_DIR}")


if __name__ == "__main__":
    main()
