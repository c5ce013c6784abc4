"""A retriever returns the passages most relevant to a query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Passage:
    id: str  # stable: "playbooks/competitive-displacement.md#snowflake", "rules/risks.yaml#..."
    title: str
    text: str
    score: float = 0.0


class Retriever(Protocol):
    backend: str

    async def retrieve(
        self, query: str, k: int, applies_to: str | None = None
    ) -> list[Passage]: ...
