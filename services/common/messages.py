"""Building, encoding and decoding envelopes (seed "Inter-Agent Communication").

Every id a stage emits is derived from the request id and the stage, never random: a
record that is processed twice (redelivery after a crash) yields byte-identical outputs with
the same idempotency key, which the next consumer then skips.

An envelope is written straight from its payload's model (`ModelEnvelope`): no dict tree of
the payload is built on the way out. It is read in two passes (JSON, then the payload's
model): reading it into `ModelEnvelope` in one pass was measured no cheaper (pydantic's JSON
parser costs what orjson does), and the two passes say exactly what is wrong with a record.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from contracts.envelope import SUPPORTED_VERSIONS, Envelope, Metadata, ModelEnvelope
from services.common.errors import PermanentError
from services.common.ids import stable_id
from services.common.records import Parsed, Record

M = TypeVar("M", bound=BaseModel)


def make_envelope(
    payload: BaseModel,
    *,
    request_id: str,
    flow_id: str,
    correlation_id: str,
    source: str,
    target: str,
    stage: str,
) -> ModelEnvelope[BaseModel]:
    """`stage` names what this message is for this request (e.g. "dataset", "action:<id>")."""
    idempotency_key = f"{request_id}:{stage}"
    return envelope_type(type(payload))(
        metadata=Metadata(
            request_id=request_id,
            flow_id=flow_id,
            source_agent=source,
            target_agent=target,
            message_id=stable_id("msg", idempotency_key),
            idempotency_key=idempotency_key,
            correlation_id=correlation_id,
        ),
        payload=payload,
    )


@cache
def envelope_type(model: type[M]) -> type[ModelEnvelope[M]]:
    """The envelope class of a payload model (pydantic makes one class per model; cached
    here: building the key of pydantic's own cache costs more than this lookup)."""
    return ModelEnvelope[model]  # type: ignore[valid-type]


def encode(model: BaseModel) -> bytes:
    # pydantic's own serializer writes JSON straight from the model (no intermediate dict
    # tree); same bytes as orjson over model_dump(mode="json"), about twice as fast.
    return model.__pydantic_serializer__.to_json(model)


def decode_json(value: bytes | None) -> object:
    if value is None:
        raise PermanentError("record has no value", code="INVALID_JSON")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise PermanentError(f"record value is not JSON: {exc}", code="INVALID_JSON") from exc


def decode_envelope(value: bytes | None, *, expected_target: str | None = None) -> Envelope:
    raw = decode_json(value)
    if isinstance(raw, dict):
        # Any JSON may arrive here (a list as metadata, a list as version): only a
        # PermanentError may leave, else the record would be re-read forever.
        metadata = raw.get("metadata")
        version = metadata.get("version") if isinstance(metadata, dict) else None
        if version is not None and not _is_supported(version):
            raise PermanentError(
                f"contract version {version!r} is not supported "
                f"(supported: {sorted(SUPPORTED_VERSIONS)})",
                code="UNSUPPORTED_VERSION",
            )
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise PermanentError(
            "record is not a valid envelope", code="INVALID_ENVELOPE", details=describe(exc)
        ) from exc
    if expected_target and envelope.metadata.target_agent != expected_target:
        raise PermanentError(
            f"envelope is addressed to {envelope.metadata.target_agent!r}, "
            f"not to {expected_target!r}",
            code="WRONG_TARGET",
        )
    return envelope


def _is_supported(version: object) -> bool:
    return isinstance(version, int | float | str) and version in SUPPORTED_VERSIONS


def decode_payload(envelope: Envelope, model: type[M]) -> M:
    try:
        return model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise PermanentError(
            f"payload is not a valid {model.__name__}",
            code="INVALID_PAYLOAD",
            details=describe(exc),
        ) from exc


def describe(exc: ValidationError) -> str:
    """One line per problem: `location: message` (values are not echoed)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(root)"
        lines.append(f"{loc}: {err['msg']}")
    return "; ".join(lines)


def envelope_parser(model: type[M], target: str) -> Callable[[Record], Parsed]:
    """The parser every envelope consumer uses: decode, check version and addressee,
    validate the payload as `model`; the envelope's ids go on every log line."""
    return envelope_reader(lambda envelope: decode_payload(envelope, model), target)


def envelope_reader(read: Callable[[Envelope], object], target: str) -> Callable[[Record], Parsed]:
    """`envelope_parser` with its own payload reader (which raises `PermanentError`)."""

    def parse(record: Record) -> Parsed:
        envelope = decode_envelope(record.value, expected_target=target)
        payload = read(envelope)
        meta = envelope.metadata
        return Parsed(
            idempotency_key=meta.idempotency_key,
            body=payload,
            envelope=envelope,
            log_context={
                "request_id": meta.request_id,
                "flow_id": meta.flow_id,
                "correlation_id": meta.correlation_id,
                "message_id": meta.message_id,
            },
        )

    return parse
