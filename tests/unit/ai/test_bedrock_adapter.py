"""The Bedrock Converse adapter at the botocore layer: botocore's Stubber (the request is
validated against the service model) and a loopback HTTP endpoint speaking Converse
(throttling, server errors, timeouts, credentials from the secrets provider)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from services.common.breaker import AsyncCircuitBreaker
from services.common.retry import RetryPolicy
from services.decision_agent.model.bedrock import BedrockConverse
from services.decision_agent.model.errors import (
    NOT_ENDPOINT_FAILURES,
    ModelAuthError,
    ModelOutputInvalid,
    ModelRefused,
    ModelRequestRejected,
    ModelThrottled,
    ModelTimeout,
    ModelUnavailable,
)
from services.decision_agent.model.gateway import (
    FlowLedger,
    GatewayConfig,
    ModelFallback,
    ModelGateway,
)
from services.decision_agent.model.store import DailyTokenBudget, PromptCache, open_store
from tests.support.model_server import ModelServer
from tests.unit.ai.support import CountingSecrets, Verdict, verdict_request

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
KEYS = json.dumps({"aws_access_key_id": "AKIATEST", "aws_secret_access_key": "secret"})


def stubbed() -> tuple[BedrockConverse, Stubber]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="secret",
    )
    adapter = BedrockConverse(MODEL, inference_profile=PROFILE, client_factory=lambda: client)
    return adapter, Stubber(client)


def converse_reply(content: list[dict], stop: str = "tool_use") -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 321, "outputTokens": 45, "totalTokens": 366},
        "metrics": {"latencyMs": 800},
    }


def tool_use(tool_input: dict, name: str = "record_verdict") -> dict:
    return {"toolUse": {"toolUseId": "tooluse_1", "name": name, "input": tool_input}}


async def test_converse_request_forces_the_tool_and_reads_its_input() -> None:
    adapter, stubber = stubbed()
    request = verdict_request()
    expected = {
        "modelId": PROFILE,  # an inference profile is what is invoked
        "system": [{"text": "You rate deals."}],
        "messages": [{"role": "user", "content": [{"text": "Rate this deal."}]}],
        "inferenceConfig": {"maxTokens": 200, "temperature": 0.0},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "record_verdict",
                        "description": "Record the verdict.",
                        "inputSchema": {"json": request.tool_schema()},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": "record_verdict"}},
        },
    }
    reply = converse_reply([{"text": "Here it is."}, tool_use({"label": "good", "score": 7})])
    stubber.add_response("converse", reply, expected)
    with stubber:
        answer = await adapter.complete(request)
    stubber.assert_no_pending_responses()
    assert answer.tool_input == {"label": "good", "score": 7}
    assert (answer.tokens_in, answer.tokens_out, answer.model_id) == (321, 45, PROFILE)
    # The schema offered to the model has no $ref left for a server to resolve.
    assert "$ref" not in json.dumps(request.tool_schema())


@pytest.mark.parametrize(
    ("content", "stop", "error"),
    [
        ([{"text": "I can't help with that."}], "content_filtered", ModelRefused),
        ([{"text": "Blocked."}], "guardrail_intervened", ModelRefused),
        ([{"text": "The deal looks good, score 7."}], "end_turn", ModelOutputInvalid),
        ([tool_use({"label": "good"})], "max_tokens", ModelOutputInvalid),
        ([tool_use({"label": "x"})], "malformed_tool_use", ModelOutputInvalid),
        ([tool_use({"label": "x"}, name="other_tool")], "tool_use", ModelOutputInvalid),
    ],
)
async def test_refusals_and_malformed_answers_are_named(content, stop, error) -> None:
    adapter, stubber = stubbed()
    stubber.add_response("converse", converse_reply(content, stop))
    with stubber, pytest.raises(error):
        await adapter.complete(verdict_request())


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 429, ModelThrottled),
        ("ServiceUnavailableException", 503, ModelUnavailable),
        ("ModelNotReadyException", 429, ModelUnavailable),
        ("ModelTimeoutException", 408, ModelTimeout),
        ("ValidationException", 400, ModelRequestRejected),
        ("AccessDeniedException", 403, ModelAuthError),
    ],
)
async def test_client_errors_map_to_what_the_gateway_needs(code, status, error) -> None:
    adapter, stubber = stubbed()
    stubber.add_client_error("converse", code, "boom", status)
    with stubber, pytest.raises(error):
        await adapter.complete(verdict_request())


def gateway_for(adapter: BedrockConverse, tmp_path, sleeps: list[float]) -> ModelGateway:
    conn = open_store(tmp_path / "model.db")

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    return ModelGateway(
        adapter,
        breaker=AsyncCircuitBreaker("test:bedrock", exclude=NOT_ENDPOINT_FAILURES),
        cache=PromptCache(conn, 3600),
        day_budget=DailyTokenBudget(conn, 1_000_000),
        config=GatewayConfig(timeout_s=5, policy=RetryPolicy(max_attempts=3, jitter=0)),
        sleep=no_wait,
    )


def loopback_adapter(server: ModelServer, secrets: CountingSecrets, timeout_s=5.0):
    return BedrockConverse(
        MODEL,
        region="us-east-1",
        endpoint_url=server.base_url,
        timeout_s=timeout_s,
        secrets=secrets,
        credentials_secret="bedrock-keys",
    )


async def test_throttled_twice_then_answered_over_http(tmp_path) -> None:
    with ModelServer(lambda tool, system, user: {"label": "good", "score": 8}) as server:
        server.bedrock_error(MODEL, "ThrottlingException", status=429, times=2)
        secrets = CountingSecrets({"bedrock-keys": KEYS})
        sleeps: list[float] = []
        gateway = gateway_for(loopback_adapter(server, secrets), tmp_path, sleeps)
        answer = await gateway.ask(verdict_request(), FlowLedger.starting_now(100_000, 60))
        requests = server.requests(server.converse_path(MODEL))
    assert answer.output == Verdict(label="good", score=8)
    assert len(requests) == 3
    assert sleeps == [0.5, 1.0]  # the retry policy's backoff, jitter off
    # Signed with the keys from the secrets provider (SigV4 names the access key id).
    assert "Credential=AKIATEST/" in (requests[0].header("Authorization") or "")
    body = requests[-1].json()
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "record_verdict"}}


async def test_throttled_on_every_attempt_falls_back(tmp_path) -> None:
    with ModelServer(lambda *_: {"label": "good", "score": 8}) as server:
        server.bedrock_error(MODEL, "ThrottlingException", status=429, times=5)
        gateway = gateway_for(
            loopback_adapter(server, CountingSecrets({"bedrock-keys": KEYS})), tmp_path, []
        )
        with pytest.raises(ModelFallback) as caught:
            await gateway.ask(verdict_request(), FlowLedger.starting_now(100_000, 60))
        assert len(server.requests()) == 3
    assert caught.value.reason == "throttled"


async def test_a_stalled_endpoint_times_out(tmp_path) -> None:
    with ModelServer(lambda *_: {"label": "good", "score": 8}) as server:
        server.stall(server.converse_path(MODEL), seconds=5)
        adapter = loopback_adapter(server, CountingSecrets({"bedrock-keys": KEYS}), timeout_s=0.3)
        with pytest.raises(ModelTimeout):
            await adapter.complete(verdict_request())


async def test_a_malformed_tool_input_fails_the_schema_and_is_not_cached(tmp_path) -> None:
    answers = iter([{"label": "good", "score": 99}, {"label": "good", "score": 9}])
    with ModelServer(lambda *_: next(answers)) as server:
        gateway = gateway_for(
            loopback_adapter(server, CountingSecrets({"bedrock-keys": KEYS})), tmp_path, []
        )
        with pytest.raises(ModelFallback) as caught:
            await gateway.ask(verdict_request(), FlowLedger.starting_now(100_000, 60))
        assert caught.value.reason == "invalid_output"
        assert "score" in str(caught.value)
        answer = await gateway.ask(verdict_request(), FlowLedger.starting_now(100_000, 60))
    assert answer.output == Verdict(label="good", score=9) and not answer.from_cache


async def test_refused_credentials_are_forgotten_and_reread(tmp_path) -> None:
    secrets = CountingSecrets({"bedrock-keys": KEYS})
    with ModelServer(lambda *_: {"label": "ok", "score": 1}) as server:
        server.bedrock_error(MODEL, "UnrecognizedClientException", status=403)
        adapter = loopback_adapter(server, secrets)
        with pytest.raises(ModelAuthError):
            await adapter.complete(verdict_request())
        assert secrets.invalidated == ["bedrock-keys"]
        rotated = {"aws_access_key_id": "AKIAROTATED", "aws_secret_access_key": "new"}
        secrets.rotate("bedrock-keys", json.dumps(rotated))
        answer = await adapter.complete(verdict_request())
        requests = server.requests()
    assert answer.tool_input == {"label": "ok", "score": 1}
    assert "Credential=AKIAROTATED/" in (requests[-1].header("Authorization") or "")


async def test_missing_credentials_secret_is_an_auth_error_naming_it() -> None:
    adapter = BedrockConverse(
        MODEL, secrets=CountingSecrets({}), credentials_secret="bedrock-keys", region="us-east-1"
    )
    with pytest.raises(ModelAuthError, match="bedrock-keys"):
        await adapter.complete(verdict_request())
