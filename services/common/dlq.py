"""Turning a failed record into the seed's error envelope on `<topic>.dlq`."""

from __future__ import annotations

import base64

from contracts import Envelope, ErrorEnvelope
from contracts.envelope import (
    DeadLetterInfo,
    DiagnosticInfo,
    ErrorInfo,
    OriginalMessage,
    RetryStrategy,
)
from services.common.errors import HandlerError
from services.common.records import Record
from services.common.retry import RetryPolicy

HEADER_DLQ_CODE = "revops-dlq-code"


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
    envelope: Envelope | None,
) -> ErrorEnvelope:
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
                operation=f"consume {record.topic}",
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
