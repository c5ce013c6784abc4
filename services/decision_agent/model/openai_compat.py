"""Any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama, LiteLLM, ...).

POST `{base_url}/chat/completions` with one function tool and `tool_choice` forcing it; the
answer is the function's JSON arguments. The API key comes from the secrets provider
(`REVOPS_MODEL_API_KEY_SECRET`; empty for a server without authentication) and is re-read
after a 401, so a rotated key needs no restart.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from services.common.security.secrets import SecretError, SecretsProvider
from services.decision_agent.model.errors import (
    ModelAuthError,
    ModelOutputInvalid,
    ModelRefused,
    ModelRequestRejected,
    ModelThrottled,
    ModelTimeout,
    ModelUnavailable,
)
from services.decision_agent.model.port import ModelReply, ModelRequest


def chat_body(model_id: str, request: ModelRequest) -> dict[str, Any]:
    return {
        "model": model_id,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.user},
        ],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": request.tool_name,
                    "description": request.tool_description,
                    "parameters": request.tool_schema(),
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": request.tool_name}},
    }


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def parse_chat(body: Any, tool_name: str, model_id: str) -> ModelReply:
    if not isinstance(body, dict) or not body.get("choices"):
        raise ModelOutputInvalid("answer has no choices")
    choice = body["choices"][0]
    message = choice.get("message") or {}
    if message.get("refusal") or choice.get("finish_reason") == "content_filter":
        raise ModelRefused(
            f"model refused: {str(message.get('refusal') or 'content filter')[:200]}"
        )
    if choice.get("finish_reason") == "length":
        raise ModelOutputInvalid("answer truncated at max_tokens")
    calls = [
        c
        for c in message.get("tool_calls") or []
        if (c.get("function") or {}).get("name") == tool_name
    ]
    if not calls:
        said = str(message.get("content") or "")[:200]
        raise ModelOutputInvalid(f"no {tool_name} tool call in the answer (said: {said!r})")
    arguments = calls[0]["function"].get("arguments")
    try:
        tool_input = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        raise ModelOutputInvalid(f"{tool_name} arguments are not JSON") from None
    if not isinstance(tool_input, dict):
        raise ModelOutputInvalid(f"{tool_name} arguments are not a JSON object")
    usage = body.get("usage") or {}
    return ModelReply(
        tool_input=tool_input,
        tokens_in=int(usage.get("prompt_tokens") or 0),
        tokens_out=int(usage.get("completion_tokens") or 0),
        model_id=str(body.get("model") or model_id),
    )


class OpenAICompatibleChat:
    backend = "openai"

    def __init__(
        self,
        base_url: str,
        model_id: str,
        *,
        timeout_s: float = 30.0,
        secrets: SecretsProvider | None = None,
        api_key_secret: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url or not model_id:
            raise ValueError(
                "the openai backend needs REVOPS_MODEL_ENDPOINT_URL and REVOPS_MODEL_ID"
            )
        self.model_id = model_id
        self._secrets = secrets
        self._api_key_secret = api_key_secret
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
            transport=transport,
        )

    def _headers(self) -> dict[str, str]:
        if not self._api_key_secret:
            return {}
        if self._secrets is None:
            raise ModelAuthError("an API key secret is set but no secrets provider")
        try:
            return {"Authorization": f"Bearer {self._secrets.get(self._api_key_secret)}"}
        except SecretError as exc:
            raise ModelAuthError(f"model API key unavailable: {exc}") from None

    async def complete(self, request: ModelRequest) -> ModelReply:
        try:
            response = await self._client.post(
                "chat/completions",
                json=chat_body(self.model_id, request),
                headers=self._headers(),
            )
        except httpx.TimeoutException as exc:
            raise ModelTimeout(
                f"model server did not answer in time ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise ModelUnavailable(f"model server unreachable ({type(exc).__name__})") from None
        status = response.status_code
        detail = response.text[:200]
        if status == 429:
            raise ModelThrottled(f"429: {detail}", retry_after_s=_retry_after(response))
        if status in (401, 403):
            if self._secrets is not None and self._api_key_secret:
                self._secrets.invalidate(self._api_key_secret)
            raise ModelAuthError(f"{status}: credentials refused")
        if status >= 500:
            raise ModelUnavailable(f"{status}: {detail}", retry_after_s=_retry_after(response))
        if status >= 400:
            raise ModelRequestRejected(f"{status}: {detail}")
        try:
            body = response.json()
        except ValueError:
            raise ModelOutputInvalid("answer is not JSON") from None
        return parse_chat(body, request.tool_name, self.model_id)

    async def close(self) -> None:
        await self._client.aclose()
