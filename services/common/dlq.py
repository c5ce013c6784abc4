"""Turning a failed record into the seed's error envelope on `<topic>.dlq`, and a dead
letter back into the rejection its sender is shown."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from contracts.envelope import (
    AnyEnvelope,
    DeadLetterInfo,
    DiagnosticInfo,
    ErrorEnvelope,
    ErrorInfo,
    OriginalMessage,
    RetryStrategy,
)
from services.common.errors import HandlerError
from services.common.records import Record
from services.common.retry import RetryPolicy

HEADER_DLQ_CODE = "revops-dlq-code"
# The request a dead letter belongs to, also when the record had no envelope (a raw trigger):
# the sender (`revops trigger --wait`, the ingress status, `revops dlq list`) finds it by it.
HEADER_REQUEST_ID = "revops-request-id"
# Set on a record the DLQ tool replays (naming the dead letter): a consumer that must not
# repeat an outside effect (the webhook processor) reads it; `services/dlq/headers.py` sets it.
REPLAY_HEADER = "revops-replay-of"


def original_message(record: Record) -> OriginalMessage:
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers}
    if record.value is None:
        return OriginalMessage(value=None, headers=headers)
    try:
        return OriginalMessage(value=record.value.decode("utf-8"), headers=headers)
    except UnicodeDecodeError:
        return OriginalMessage(
            value=base64.b64encode(record.value).decode(), encoding="base64", headers=headers
        )


def build_error_envelope(
    record: Record,
    error: BaseException,
    *,
    attempts: int,
    service: str,
    consumer_group: str,
    policy: RetryPolicy,
    envelope: AnyEnvelope | None,
    operation: str | None = None,
) -> ErrorEnvelope:
    """The one error envelope of a dead letter (docs/reliability.md): what failed, how it
    was retried, where the record was, and the record itself. `operation` says what was
    being done (default: consuming the record's topic)."""
    if isinstance(error, HandlerError):
        code, message, details = error.code, error.message, error.details
        permanent = not error.retryable
    else:
        code, message, details = "PROCESSING_FAILED", type(error).__name__, str(error)[:2000]
        permanent = False
    return ErrorEnvelope(
        metadata=envelope.metadata if envelope else None,
        error=ErrorInfo(
            code=code,
            message=message,
            details=details,
            recovery_action="manual" if permanent else "replay",
            retry_strategy=RetryStrategy(
                max_attempts=policy.max_attempts,
                backoff_rate=policy.backoff_rate,
                initial_delay_seconds=policy.initial_delay_s,
            ),
            severity="permanent" if permanent else "recoverable",
            diagnostic_info=DiagnosticInfo(
                trace_id=envelope.metadata.correlation_id if envelope else record.position,
                service=service,
                operation=operation or f"consume {record.topic}",
            ),
        ),
        dead_letter=DeadLetterInfo(
            attempts=attempts,
            original_topic=record.topic,
            original_partition=record.partition,
            original_offset=record.offset,
            original_key=record.key.decode("utf-8", "replace") if record.key else None,
            original_timestamp_ms=record.timestamp_ms,
            consumer_group=consumer_group,
        ),
        original=original_message(record),
    )


def request_id_in_value(value: bytes | None) -> str | None:
    """The request id a record's JSON names (`request_id` of a raw trigger, or
    `metadata.request_id` of an envelope); None when it names none or is not JSON."""
    try:
        raw = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    metadata = raw.get("metadata")
    found = metadata.get("request_id") if isinstance(metadata, dict) else raw.get("request_id")
    return found if isinstance(found, str) and found else None


def header_text(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name and value:
            return value.decode("utf-8", "replace")
    return None


@dataclass(frozen=True)
class Rejection:
    """A dead letter as the sender of its request sees it: the flow stopped there."""

    request_id: str
    code: str
    reason: str
    dlq_position: str  # <dlq topic>:<partition>:<offset>, for `revops dlq show`

    @property
    def line(self) -> str:
        return f"{self.code}: {self.reason} (revops dlq show {self.dlq_position})"


def rejection_of(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> Rejection | None:
    """The rejection a dead-letter record carries; None when it names no request or is not
    an error envelope."""
    try:
        envelope = ErrorEnvelope.model_validate_json(value or b"")
    except ValidationError:
        return None
    request_id = request_id_of(envelope, headers)
    if request_id is None:
        return None
    error = envelope.error
    reason = f"{error.message}: {error.details}" if error.details else error.message
    return Rejection(request_id, error.code, reason, f"{topic}:{partition}:{offset}")


def request_id_of(envelope: ErrorEnvelope, headers: Sequence[tuple[str, bytes]]) -> str | None:
    """The envelope's request id; for a record that had no envelope (a raw trigger), the
    dead letter's header, else the id the original value names (dead letters written before
    the header existed)."""
    return (
        (envelope.metadata.request_id if envelope.metadata else None)
        or header_text(headers, HEADER_REQUEST_ID)
        or request_id_in_value(original_value_bytes(envelope.original))
    )


def original_value_bytes(original: OriginalMessage) -> bytes | None:
    """The bytes of the record that failed, as the error envelope keeps them."""
    if original.value is None:
        return None
    if original.encoding == "base64":
        try:
            return base64.b64decode(original.value, validate=True)
        except ValueError:
            return None
    return original.value.encode("utf-8")


def rejections_in(records: Iterable[Any]) -> list[Rejection]:
    """The rejections among dead-letter records (aiokafka ConsumerRecords)."""
    found = (
        rejection_of(r.topic, r.partition, r.offset, r.value, r.headers or ()) for r in records
    )
    return [r for r in found if r is not None]
