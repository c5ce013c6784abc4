"""The ingress's OpenAPI document, built from the same pydantic models that validate requests.

`python -m services.ingress.openapi` rewrites the committed `openapi.json`; a test checks
that the committed file, this builder and the served `/openapi.json` agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from contracts import RawTrigger
from services.common.security.hmac_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER
from services.ingress.api import FLOW_PATH, SALESFORCE_PATH, TRIGGERS_PATH
from services.ingress.schemas import (
    EventIgnored,
    FlowStatus,
    Problem,
    SalesforceOpportunityEvent,
    TriggerAccepted,
)

COMMITTED = Path(__file__).with_name("openapi.json")
_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (RawTrigger, "validation"),
    (SalesforceOpportunityEvent, "validation"),
    (TriggerAccepted, "serialization"),
    (EventIgnored, "serialization"),
    (FlowStatus, "serialization"),
    (Problem, "serialization"),
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _content(model: type[BaseModel], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": _ref(model)}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": _content(Problem, "application/problem+json")}


_REFUSALS = {
    "401": _problem("Missing, invalid or stale credentials (bad signature, old timestamp)"),
    "413": _problem("Body over the size limit (64 KiB by default)"),
    "415": _problem("Body is not application/json"),
    "422": _problem("Body does not match the schema; `errors` lists the problems"),
    "503": _problem(
        "Kafka did not take the trigger in time (it is down or unreachable): retry after "
        "Retry-After seconds, with the same request_id"
    ),
}


def _post(summary: str, body: type[BaseModel], ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": _content(body)},
            "responses": {**ok, **_REFUSALS},
        }
    }


def build_openapi() -> dict[str, Any]:
    _, definitions = models_json_schema(_MODELS, ref_template="#/components/schemas/{model}")
    accepted = {"202": {"description": "Accepted and queued", "content": _content(TriggerAccepted)}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RevOps AI Framework ingress",
            "version": "1.0.0",
            "description": (
                "Authenticate with `Authorization: Bearer <token>`, or sign: "
                f"`{TIMESTAMP_HEADER}: <unix seconds>` and "
                f'`{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>` '
                "(5-minute window). A GET signs its path in place of the body."
            ),
        },
        "paths": {
            TRIGGERS_PATH: _post("Queue a raw trigger", RawTrigger, accepted),
            SALESFORCE_PATH: _post(
                "Map an opportunity stage change to a deal-quality trigger",
                SalesforceOpportunityEvent,
                {
                    **accepted,
                    "200": {
                        "description": "A stage change that needs no review",
                        "content": _content(EventIgnored),
                    },
                },
            ),
            FLOW_PATH: {
                "get": {
                    "summary": (
                        "Status of a request: accepted, complete (with its flow output) or "
                        "rejected (with the dead letter's code and reason)"
                    ),
                    "parameters": [
                        {
                            "name": "request_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "Accepted, complete or rejected",
                            "content": _content(FlowStatus),
                        },
                        "401": _REFUSALS["401"],
                        "404": _problem("Never accepted here, no flow output nor rejection seen"),
                    },
                }
            },
        },
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "hmacSignature": {"type": "apiKey", "in": "header", "name": SIGNATURE_HEADER},
                "hmacTimestamp": {"type": "apiKey", "in": "header", "name": TIMESTAMP_HEADER},
            },
        },
        "security": [{"bearer": []}, {"hmacSignature": [], "hmacTimestamp": []}],
    }


def render() -> str:
    return json.dumps(build_openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    COMMITTED.write_text(render(), encoding="utf-8")
    print(f"wrote {COMMITTED}")
