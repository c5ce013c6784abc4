"""Small helpers shared by the AI-layer tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from services.common.security.secrets import EnvSecretsProvider
from services.decision_agent.model.port import ModelReply, ModelRequest


class Verdict(BaseModel):
    """A tiny output model for adapter and gateway tests."""

    label: str = Field(max_length=40)
    score: int = Field(ge=0, le=10)


def verdict_request(user: str = "Rate this deal.", prompt_id: str = "verdict") -> ModelRequest:
    return ModelRequest(
        prompt_id=prompt_id,
        prompt_version="1-test",
        system="You rate deals.",
        user=user,
        tool_name="record_verdict",
        tool_description="Record the verdict.",
        output_model=Verdict,
        max_tokens=200,
        temperature=0.0,
    )


class CountingSecrets(EnvSecretsProvider):
    """Secrets from a dict (mutable: a test rotates a key) that counts invalidations."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        super().__init__({EnvSecretsProvider.variable(k): v for k, v in self.values.items()})
        self.invalidated: list[str] = []

    def rotate(self, name: str, value: str) -> None:
        self.values[name] = value
        self._environ = {EnvSecretsProvider.variable(k): v for k, v in self.values.items()}

    def invalidate(self, name: str) -> None:
        self.invalidated.append(name)


class ScriptedPort:
    """A model port answering from a list of scripted outcomes (a reply or an exception),
    for the gateway's own logic: budgets, breaker, cache, retries."""

    backend = "scripted"
    model_id = "scripted-model"

    def __init__(self, outcomes: list[ModelReply | BaseException] | None = None) -> None:
        self.outcomes = list(outcomes or [])
        self.requests: list[ModelRequest] = []

    def ok(self, tool_input: dict[str, Any], tokens_in: int = 100, tokens_out: int = 20) -> None:
        self.outcomes.append(ModelReply(tool_input, tokens_in, tokens_out, self.model_id))

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is None:
            raise AssertionError("the port was called more often than scripted")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def close(self) -> None:
        return None
