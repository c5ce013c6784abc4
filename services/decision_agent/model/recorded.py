"""Recorded answers: replay what a model once said to the same prompt inputs.

A recordings file is JSON Lines, one answer per line:

    {"key": "<ModelRequest.inputs_key()>", "prompt": "deal_narrative",
     "prompt_version": "1-3f2a9c1b", "model_id": "anthropic.claude-...",
     "tool_input": {...}, "tokens_in": 1200, "tokens_out": 180}

`RecordingModel` writes such lines around a live adapter (`REVOPS_MODEL_RECORD_TO`);
`RecordedModel` replays them (`REVOPS_MODEL_BACKEND=recorded`), which is how the tests and
offline runs exercise the whole AI layer without a model. An input with no recording is a
`NoRecording` error: the analysis falls back to the deterministic path, as on any failure.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from services.decision_agent.model.errors import NoRecording
from services.decision_agent.model.port import ModelPort, ModelReply, ModelRequest


class Recording(BaseModel):
    key: str
    prompt: str
    prompt_version: str
    model_id: str
    tool_input: dict[str, Any]
    tokens_in: int = 0
    tokens_out: int = 0


class RecordingsFileError(ValueError):
    """A recordings file that cannot be read; the message names file and line."""


def read_recordings(path: Path) -> dict[str, Recording]:
    found: dict[str, Recording] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RecordingsFileError(f"{path}: cannot read recordings: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            recording = Recording.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise RecordingsFileError(f"{path}:{number}: {where}: {first['msg']}") from None
        found[recording.key] = recording  # a later recording of the same inputs wins
    return found


def recording_line(request: ModelRequest, reply: ModelReply) -> bytes:
    recording = Recording(
        key=request.inputs_key(),
        prompt=request.prompt_id,
        prompt_version=request.prompt_version,
        model_id=reply.model_id,
        tool_input=reply.tool_input,
        tokens_in=reply.tokens_in,
        tokens_out=reply.tokens_out,
    )
    return orjson.dumps(recording.model_dump(mode="json")) + b"\n"


class RecordedModel:
    backend = "recorded"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._recordings = read_recordings(path)
        models = sorted({r.model_id for r in self._recordings.values()})
        self.model_id = "recorded:" + (",".join(models) if models else "empty")

    def __len__(self) -> int:
        return len(self._recordings)

    async def complete(self, request: ModelRequest) -> ModelReply:
        recording = self._recordings.get(request.inputs_key())
        if recording is None:
            raise NoRecording(
                f"no recorded answer for prompt {request.prompt_id} "
                f"{request.prompt_version} with these inputs in {self.path}"
            )
        return ModelReply(
            tool_input=recording.tool_input,
            tokens_in=recording.tokens_in,
            tokens_out=recording.tokens_out,
            model_id=recording.model_id,
        )

    async def close(self) -> None:
        return None


class RecordingModel:
    """A live adapter whose every answer is also appended to a recordings file."""

    def __init__(self, inner: ModelPort, path: Path) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.model_id = inner.model_id
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    async def complete(self, request: ModelRequest) -> ModelReply:
        reply = await self.inner.complete(request)
        line = recording_line(request, reply)
        with self._lock, self.path.open("ab") as out:
            out.write(line)
        return reply

    async def close(self) -> None:
        await self.inner.close()
