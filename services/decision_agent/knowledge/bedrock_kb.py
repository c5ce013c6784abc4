"""Amazon Bedrock Knowledge Bases: the Retrieve API of `bedrock-agent-runtime`.

The production knowledge store: the same playbooks and rules ingested into a knowledge base
(S3 data source), searched by vector similarity. A passage's id is its source location
(S3 URI, web URL) plus its position in the answer, so provenance names where it came from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from services.decision_agent.knowledge.port import Passage

MAX_PASSAGE_CHARS = 2400


def _location(result: dict[str, Any]) -> str:
    location = result.get("location") or {}
    for key, field in (
        ("s3Location", "uri"),
        ("webLocation", "url"),
        ("confluenceLocation", "url"),
        ("sharePointLocation", "url"),
        ("salesforceLocation", "url"),
        ("kendraDocumentLocation", "uri"),
        ("customDocumentLocation", "id"),
    ):
        value = (location.get(key) or {}).get(field)
        if value:
            return str(value)
    return str(location.get("type") or "knowledge-base")


def passages_from_retrieve(response: dict[str, Any]) -> list[Passage]:
    passages = []
    for index, result in enumerate(response.get("retrievalResults") or []):
        text = str((result.get("content") or {}).get("text") or "").strip()
        if not text:
            continue
        source = _location(result)
        passages.append(
            Passage(
                id=f"{source}#{index + 1}",
                title=source.rsplit("/", 1)[-1],
                text=text[:MAX_PASSAGE_CHARS],
                score=float(result.get("score") or 0.0),
            )
        )
    return passages


class BedrockKnowledgeBase:
    backend = "bedrock"

    def __init__(
        self,
        knowledge_base_id: str,
        *,
        region: str | None = None,
        timeout_s: float = 10.0,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        if not knowledge_base_id:
            raise ValueError("REVOPS_KNOWLEDGE_BASE_ID must be set for knowledge_backend=bedrock")
        self.knowledge_base_id = knowledge_base_id
        self._region = region
        self._timeout_s = timeout_s
        self._client: Any = (client_factory or self._new_client)()

    def _new_client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            read_timeout=self._timeout_s,
            connect_timeout=min(5.0, self._timeout_s),
            retries={"total_max_attempts": 2, "mode": "standard"},
        )
        return boto3.client("bedrock-agent-runtime", region_name=self._region, config=config)

    def _retrieve(self, query: str, k: int) -> list[Passage]:
        response = self._client.retrieve(
            knowledgeBaseId=self.knowledge_base_id,
            retrievalQuery={"text": query[:1000]},
            retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": k}},
        )
        return passages_from_retrieve(response)

    async def retrieve(self, query: str, k: int, applies_to: str | None = None) -> list[Passage]:
        # Filtering by analysis type needs metadata on the ingested files; the query names it.
        return await asyncio.to_thread(self._retrieve, query, k)
