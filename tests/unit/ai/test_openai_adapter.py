"""The OpenAI-compatible adapter against a loopback chat-completions server."""

from __future__ import annotations

import pytest

from services.decision_agent.model.errors import (
    ModelAuthError,
    ModelOutputInvalid,
    ModelRefused,
    ModelRequestRejected,
    ModelThrottled,
    ModelTimeout,
    ModelUnavailable,
)
from services.decision_agent.model.openai_compat import OpenAICompatibleChat
from tests.support.model_server import ModelServer
from tests.unit.ai.support import CountingSecrets, verdict_request

PATH = "/v1/chat/completions"


def adapter_for(server: ModelServer, secrets=None, secret="model-api-key", timeout_s=5.0):
    return OpenAICompatibleChat(
        server.url("/v1"),
        "llama-3.1-70b-instruct",
        timeout_s=timeout_s,
        secrets=secrets or CountingSecrets({"model-api-key": "sk-test-1"}),
        api_key_secret=secret,
    )


def chat_answer(message: dict, finish: str = "stop") -> dict:
    return {
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }


async def test_request_forces_the_function_and_reads_its_arguments() -> None:
    with ModelServer(lambda tool, system, user: {"label": f"{tool}:{user}", "score": 3}) as server:
        adapter = adapter_for(server)
        reply = await adapter.complete(verdict_request())
        await adapter.close()
        request = server.requests(PATH)[0]
    body = request.json()
    assert body["model"] == "llama-3.1-70b-instruct"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "record_verdict"}}
    assert body["tools"][0]["function"]["parameters"]["properties"]["score"]["maximum"] == 10
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert (body["temperature"], body["max_tokens"]) == (0.0, 200)
    assert request.header("Authorization") == "Bearer sk-test-1"
    assert reply.tool_input == {"label": "record_verdict:Rate this deal.", "score": 3}
    assert (reply.tokens_in, reply.tokens_out) == (900, 120)


async def test_a_server_without_authentication_gets_no_key() -> None:
    with ModelServer(lambda *_: {"label": "a", "score": 1}) as server:
        adapter = adapter_for(server, secret="")
        await adapter.complete(verdict_request())
        await adapter.close()
        assert server.requests(PATH)[0].header("Authorization") is None


async def test_rate_limit_carries_retry_after() -> None:
    with ModelServer(lambda *_: {"label": "a", "score": 1}) as server:
        server.rate_limit(PATH, retry_after=7)
        adapter = adapter_for(server)
        with pytest.raises(ModelThrottled) as caught:
            await adapter.complete(verdict_request())
        await adapter.close()
    assert caught.value.retry_after_s == 7.0


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (chat_answer({"role": "assistant", "refusal": "I can't do that."}), ModelRefused),
        (chat_answer({"role": "assistant", "content": ""}, "content_filter"), ModelRefused),
        (chat_answer({"role": "assistant", "content": "score: 7"}), ModelOutputInvalid),
        (
            chat_answer(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "type": "function",
                            "function": {"name": "record_verdict", "arguments": "{"},
                        }
                    ],
                }
            ),
            ModelOutputInvalid,
        ),
        (chat_answer({"role": "assistant", "content": "..."}, "length"), ModelOutputInvalid),
        ({"error": "no choices"}, ModelOutputInvalid),
    ],
)
async def test_refusals_and_malformed_answers(answer, error) -> None:
    with ModelServer(lambda *_: {}) as server:
        server.respond(PATH, json=answer)
        adapter = adapter_for(server)
        with pytest.raises(error):
            await adapter.complete(verdict_request())
        await adapter.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, ModelUnavailable), (503, ModelUnavailable), (400, ModelRequestRejected)],
)
async def test_http_errors(status, error) -> None:
    with ModelServer(lambda *_: {}) as server:
        server.fail(PATH, status=status)
        adapter = adapter_for(server)
        with pytest.raises(error):
            await adapter.complete(verdict_request())
        await adapter.close()


async def test_a_refused_key_is_invalidated_and_the_rotated_one_used() -> None:
    secrets = CountingSecrets({"model-api-key": "sk-old"})
    with ModelServer(lambda *_: {"label": "a", "score": 1}) as server:
        server.fail(PATH, status=401)
        adapter = adapter_for(server, secrets)
        with pytest.raises(ModelAuthError):
            await adapter.complete(verdict_request())
        assert secrets.invalidated == ["model-api-key"]
        secrets.rotate("model-api-key", "sk-new")
        await adapter.complete(verdict_request())
        await adapter.close()
        headers = [r.header("Authorization") for r in server.requests(PATH)]
    assert headers == ["Bearer sk-old", "Bearer sk-new"]


async def test_a_stalled_server_times_out() -> None:
    with ModelServer(lambda *_: {"label": "a", "score": 1}) as server:
        server.stall(PATH, seconds=5)
        adapter = adapter_for(server, timeout_s=0.3)
        with pytest.raises(ModelTimeout):
            await adapter.complete(verdict_request())
        await adapter.close()


async def test_an_unreachable_server_is_unavailable() -> None:
    with ModelServer(lambda *_: {}) as server:
        url = server.url("/v1")
    adapter = OpenAICompatibleChat(url, "m", timeout_s=1, api_key_secret="")
    with pytest.raises(ModelUnavailable):
        await adapter.complete(verdict_request())
    await adapter.close()
