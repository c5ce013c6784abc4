"""The port: one request (system + user text, one tool whose input is the answer) in, the
tool's input out.

Every adapter forces the model to answer by calling the request's tool, so the answer is
JSON in a known shape (validated by a pydantic model in the gateway) and never prose to
parse.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from pydantic import BaseModel


@dataclass(frozen=True)
class ModelRequest:
    prompt_id: str
    prompt_version: str
    system: str
    user: str
    tool_name: str
    tool_description: str
    output_model: type[BaseModel]  # validates the tool input; its JSON schema is the tool's
    max_tokens: int
    temperature: float

    def tool_schema(self) -> dict[str, Any]:
        return _schema(self.output_model)

    def inputs_key(self) -> str:
        """A hash of everything the model sees: the same inputs are the same question.

        Recordings are keyed by it (a recorded answer fits any model that was asked the same
        question); the cache adds the model and its sampling parameters.
        """
        return _hash(
            {
                "prompt": self.prompt_id,
                "version": self.prompt_version,
                "system": self.system,
                "user": self.user,
                "tool": self.tool_name,
                "schema": self.tool_schema(),
            }
        )

    def estimated_tokens(self) -> int:
        """An upper-bound guess before the call (about 4 characters a token, plus the whole
        output allowance): what the budget reserves."""
        chars = len(self.system) + len(self.user) + len(orjson.dumps(self.tool_schema()))
        return chars // 3 + self.max_tokens


@dataclass(frozen=True)
class ModelReply:
    tool_input: dict[str, Any]
    tokens_in: int
    tokens_out: int
    model_id: str


class ModelPort(Protocol):
    backend: str
    model_id: str

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Ask once (no retries: the gateway retries); raise a `ModelError` on failure."""
        ...

    async def close(self) -> None: ...


def _hash(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


_SCHEMAS: dict[type[BaseModel], dict[str, Any]] = {}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    found = _SCHEMAS.get(model)
    if found is None:
        found = _SCHEMAS[model] = inline_refs(model.model_json_schema())
    return found


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every ``$ref`` to ``$defs`` replaced by the definition itself: tool
    schemas are read by many model servers, and not all of them resolve references."""
    definitions = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def cache_key(request: ModelRequest, backend: str, model_id: str) -> str:
    """The prompt inputs plus who answers them and how (model, temperature, max tokens)."""
    return _hash(
        {
            "inputs": request.inputs_key(),
            "backend": backend,
            "model": model_id,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
    )
