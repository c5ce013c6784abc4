"""The shapes a model must answer in: the input schema of the tool each prompt forces.

Structure is strict (a malformed answer is refused as a whole); values are checked claim by
claim by `grounding` (an unsupported claim is dropped, the rest kept). Lengths are bounded
so a runaway answer cannot flood an alert.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STANCES = ("champion", "supportive", "neutral", "skeptical", "blocker")


def _quote() -> Any:
    return Field(
        max_length=600, description="Verbatim, contiguous text copied from the call, no ellipsis"
    )


class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore")


class QuotedLabel(_Output):
    label: str = Field(max_length=80, description="One of the classes offered in the prompt")
    quote: str = _quote()


class StakeholderRead(_Output):
    email: str = Field(max_length=320, description="A customer participant's e-mail, as listed")
    role: str = Field(max_length=40)
    stance: str = Field(max_length=40, description=" | ".join(STANCES))
    quote: str = _quote()


class NextStepRead(_Output):
    action: str = Field(max_length=300, description="The agreed action in a few words")
    quote: str = _quote()


class CallUnderstanding(_Output):
    """What one customer call shows."""

    objections: list[QuotedLabel] = Field(default_factory=list, max_length=20)
    competitors: list[QuotedLabel] = Field(default_factory=list, max_length=20)
    technical_requirements: list[QuotedLabel] = Field(default_factory=list, max_length=20)
    stakeholders: list[StakeholderRead] = Field(default_factory=list, max_length=20)
    next_steps: list[NextStepRead] = Field(default_factory=list, max_length=20)


class RecommendationWording(_Output):
    id: str = Field(max_length=40, description="The id of a recommendation in the facts")
    description: str = Field(max_length=500)


class MitigationWording(_Output):
    based_on: str = Field(max_length=80, description="The code of a risk flag in the facts")
    text: str = Field(max_length=400)


class Narrative(_Output):
    """A deal's or an account's narrative, worded from the analysis's facts only."""

    summary: str = Field(max_length=1500)
    recommendations: list[RecommendationWording] = Field(default_factory=list, max_length=30)
    mitigations: list[MitigationWording] = Field(default_factory=list, max_length=30)


OUTPUT_MODELS: dict[str, type[BaseModel]] = {
    "call_understanding": CallUnderstanding,
    "narrative": Narrative,
}
