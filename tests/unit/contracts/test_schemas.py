"""The committed JSON Schemas are the published contract: a model change that is not
re-exported (`make schemas`) fails here."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contracts import Envelope, RawTrigger
from contracts.export import MODELS, SCHEMA_DIR, render


@pytest.mark.parametrize("name", sorted(MODELS))
def test_committed_schema_matches_model(name):
    committed = (SCHEMA_DIR / f"{name}.json").read_text()
    assert committed == render(MODELS[name]), f"run `make schemas`: {name}.json drifted"


def test_every_schema_file_belongs_to_a_model():
    assert {p.stem for p in SCHEMA_DIR.glob("*.json")} == set(MODELS)


def test_raw_trigger_schema_matches_the_seed_example():
    seed = {
        "trigger_type": "scheduled",
        "parameters": {
            "account_id": "123456",
            "opportunity_id": "OP-789",
            "analysis_type": "deal_quality",
        },
    }
    assert RawTrigger.model_validate(seed).parameters.opportunity_id == "OP-789"
    schema = json.loads((SCHEMA_DIR / "raw_trigger.json").read_text())
    assert set(schema["required"]) == {"trigger_type", "parameters"}


def test_envelope_refuses_unknown_fields():
    with pytest.raises(ValidationError):
        Envelope.model_validate(
            {
                "metadata": {
                    "request_id": "r",
                    "flow_id": "f",
                    "source_agent": "data_agent",
                    "target_agent": "decision_agent",
                    "message_id": "m",
                    "idempotency_key": "k",
                    "correlation_id": "c",
                    "version": 1,
                    "surprise": True,
                },
                "payload": {},
            }
        )
