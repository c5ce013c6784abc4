"""Amazon Bedrock through boto3's `bedrock-runtime` Converse API.

The request offers one tool and forces it (`toolChoice.tool`), so the answer is the tool's
input: JSON in the output model's shape. boto3 is synchronous; each call runs in a worker
thread, bounded by botocore's own read timeout (the gateway's timeout stops waiting, the
read timeout stops the thread). botocore's retries are off: the gateway retries, with its
metrics and backoff.

Credentials: the AWS default chain (IRSA in Kubernetes), or a secret from the project's
secrets provider holding ``{"aws_access_key_id": ..., "aws_secret_access_key": ...,
"aws_session_token": ...}``. A refused credential drops the client and invalidates the
secret, so a rotation is picked up on the next call.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

from services.common.security.secrets import SecretError, SecretsProvider
from services.decision_agent.model.errors import (
    ModelAuthError,
    ModelError,
    ModelOutputInvalid,
    ModelRefused,
    ModelRequestRejected,
    ModelThrottled,
    ModelTimeout,
    ModelUnavailable,
)
from services.decision_agent.model.port import ModelReply, ModelRequest

THROTTLED = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}
UNAVAILABLE = {
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelNotReadyException",
    "ModelErrorException",
}
AUTH = {
    "UnrecognizedClientException",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "AccessDeniedException",
}
REFUSED_STOPS = {"content_filtered", "guardrail_intervened"}
MALFORMED_STOPS = {"malformed_model_output", "malformed_tool_use", "max_tokens"}


def converse_arguments(model_id: str, request: ModelRequest) -> dict[str, Any]:
    """The keyword arguments of `client.converse` for `request`."""
    return {
        "modelId": model_id,
        "system": [{"text": request.system}],
        "messages": [{"role": "user", "content": [{"text": request.user}]}],
        "inferenceConfig": {
            "maxTokens": request.max_tokens,
            "temperature": request.temperature,
        },
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": request.tool_name,
                        "description": request.tool_description,
                        "inputSchema": {"json": request.tool_schema()},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": request.tool_name}},
        },
    }


def parse_converse(response: dict[str, Any], tool_name: str, model_id: str) -> ModelReply:
    """The tool input of a Converse response, or the error that explains its absence."""
    stop = str(response.get("stopReason", ""))
    if stop in REFUSED_STOPS:
        raise ModelRefused(f"Bedrock stopped with {stop}")
    if stop in MALFORMED_STOPS:
        raise ModelOutputInvalid(f"Bedrock stopped with {stop}")
    content = response.get("output", {}).get("message", {}).get("content", [])
    tool_input = next(
        (
            block["toolUse"].get("input")
            for block in content
            if isinstance(block, dict)
            and "toolUse" in block
            and block["toolUse"].get("name") == tool_name
        ),
        None,
    )
    if tool_input is None:
        said = " ".join(b.get("text", "") for b in content if isinstance(b, dict))[:200]
        raise ModelOutputInvalid(f"no {tool_name} tool call in the answer (said: {said!r})")
    if not isinstance(tool_input, dict):
        raise ModelOutputInvalid(f"{tool_name} input is not a JSON object")
    usage = response.get("usage", {})
    return ModelReply(
        tool_input=tool_input,
        tokens_in=int(usage.get("inputTokens", 0)),
        tokens_out=int(usage.get("outputTokens", 0)),
        model_id=model_id,
    )


def error_for(exc: BaseException) -> ModelError:
    """The gateway's view of a botocore exception."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ParamValidationError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "ClientError"))
        message = f"Bedrock {code}: {str(error.get('Message', ''))[:200]}"
        if code in THROTTLED:
            return ModelThrottled(message)
        if code == "ModelTimeoutException":
            return ModelTimeout(message)
        if code in UNAVAILABLE:
            return ModelUnavailable(message)
        if code in AUTH:
            return ModelAuthError(message)
        return ModelRequestRejected(message)
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return ModelTimeout(f"Bedrock did not answer in time ({type(exc).__name__})")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError):
        return ModelUnavailable(f"Bedrock unreachable ({type(exc).__name__})")
    if isinstance(exc, ParamValidationError):
        return ModelRequestRejected(f"invalid Converse request: {exc}")
    return ModelUnavailable(f"Bedrock call failed ({type(exc).__name__})")


class BedrockConverse:
    backend = "bedrock"

    def __init__(
        self,
        model_id: str,
        *,
        inference_profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout_s: float = 30.0,
        secrets: SecretsProvider | None = None,
        credentials_secret: str | None = None,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        if not (model_id or inference_profile):
            raise ValueError("REVOPS_MODEL_ID or REVOPS_MODEL_INFERENCE_PROFILE must be set")
        # An inference profile (cross-region, or with its own quota) is what is invoked.
        self.model_id = inference_profile or model_id
        self._region = region
        self._endpoint_url = endpoint_url
        self._timeout_s = timeout_s
        self._secrets = secrets
        self._credentials_secret = credentials_secret
        self._factory = client_factory or self._new_client
        self._client: Any = None
        self._lock = threading.Lock()

    def _new_client(self) -> Any:
        import boto3
        from botocore.config import Config

        keys: dict[str, str] = {}
        if self._credentials_secret:
            if self._secrets is None:
                raise ModelAuthError("a credentials secret is set but no secrets provider")
            try:
                raw = json.loads(self._secrets.get(self._credentials_secret))
            except (SecretError, ValueError) as exc:
                raise ModelAuthError(f"Bedrock credentials unavailable: {exc}") from None
            if not isinstance(raw, dict):
                raise ModelAuthError(f"secret {self._credentials_secret!r} is not a JSON object")
            keys = {
                k: str(raw[k])
                for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
                if raw.get(k)
            }
        session = boto3.session.Session(region_name=self._region, **keys)
        config = Config(
            read_timeout=self._timeout_s,
            connect_timeout=min(5.0, self._timeout_s),
            retries={"total_max_attempts": 1},
        )
        return session.client("bedrock-runtime", endpoint_url=self._endpoint_url, config=config)

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def _forget_credentials(self) -> None:
        with self._lock:
            self._client = None
        if self._secrets is not None and self._credentials_secret:
            self._secrets.invalidate(self._credentials_secret)

    def _converse(self, request: ModelRequest) -> ModelReply:
        client = self._get_client()
        try:
            response = client.converse(**converse_arguments(self.model_id, request))
        except Exception as exc:
            error = error_for(exc)
            if isinstance(error, ModelAuthError):
                self._forget_credentials()
            raise error from None
        return parse_converse(response, request.tool_name, self.model_id)

    async def complete(self, request: ModelRequest) -> ModelReply:
        return await asyncio.to_thread(self._converse, request)

    async def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            client.close()
