"""A loopback language-model endpoint speaking both wire protocols the project supports:
OpenAI-compatible chat completions (`POST /chat/completions`) and Amazon Bedrock's Converse
(`POST /model/<model id>/converse`, rest-json, errors named by `x-amzn-ErrorType`).

Answers come from a Python function of the request (tool name, system and user text), so a
test can answer like a model would (quote the call it was given, word a narrative from the
facts it was given). Failures are scripted per path with HttpRecorder's `fail`, `rate_limit`
and `stall`; every request is recorded.

    with ModelServer(lambda tool, system, user: {...}) as server:
        server.converse_path("my-model")          # the path Bedrock calls for a model id
        server.bedrock_error("my-model", "ThrottlingException", status=429, times=2)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tests.support.http_recorder import HttpRecorder, RecordedRequest, _Behaviour

Answer = Callable[[str, str, str], dict[str, Any]]


def _texts(body: dict[str, Any]) -> tuple[str, str, str]:
    """(tool name, system, user) of an OpenAI or a Converse request body."""
    if "messages" in body and "toolConfig" in body:
        tool = body["toolConfig"]["toolChoice"]["tool"]["name"]
        system = " ".join(part["text"] for part in body.get("system", []))
        user = " ".join(part["text"] for part in body["messages"][0]["content"])
        return tool, system, user
    tool = body["tool_choice"]["function"]["name"]
    by_role = {m["role"]: m["content"] for m in body["messages"]}
    return tool, by_role.get("system", ""), by_role.get("user", "")


class ModelServer(HttpRecorder):
    def __init__(self, answer: Answer, tokens_in: int = 900, tokens_out: int = 120) -> None:
        super().__init__()
        self.answer = answer
        self.tokens = (tokens_in, tokens_out)
        self._current = threading.local()

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    @staticmethod
    def converse_path(model_id: str) -> str:
        return f"/model/{quote(model_id, safe='')}/converse"

    def bedrock_error(
        self, model_id: str, code: str, status: int = 400, times: int = 1, message: str = "x"
    ) -> None:
        self.fail(
            self.converse_path(model_id),
            status=status,
            times=times,
            body={"message": message},
            headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/"},
        )

    def _record(self, request: RecordedRequest) -> None:
        self._current.request = request  # the handler thread asks for its answer next
        super()._record(request)

    def _next_behaviour(self, path: str) -> _Behaviour:
        with self._lock:
            scripted = bool(self._scripted.get(path)) or path in self._defaults
        if scripted:
            return super()._next_behaviour(path)
        body = self._current.request.json()
        tool, system, user = _texts(body)
        tool_input = self.answer(tool, system, user)
        if path.endswith("/converse"):
            reply: dict[str, Any] = {
                "output": {
                    "message": {
                        "role": "assistant",
                        "content": [
                            {
                                "toolUse": {
                                    "toolUseId": "tooluse_1",
                                    "name": tool,
                                    "input": tool_input,
                                }
                            }
                        ],
                    }
                },
                "stopReason": "tool_use",
                "usage": {
                    "inputTokens": self.tokens[0],
                    "outputTokens": self.tokens[1],
                    "totalTokens": sum(self.tokens),
                },
                "metrics": {"latencyMs": 5},
            }
        else:
            reply = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {"name": tool, "arguments": json.dumps(tool_input)},
                                }
                            ],
                        },
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {
                    "prompt_tokens": self.tokens[0],
                    "completion_tokens": self.tokens[1],
                    "total_tokens": sum(self.tokens),
                },
            }
        return _Behaviour(200, json.dumps(reply).encode())
