"""A dead-letter record as the tool sees it: its position, its error envelope, its payload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from contracts import ErrorEnvelope
from services.common.dlq import original_value_bytes, request_id_of
from services.common.messages import describe

DLQ_SUFFIX = ".dlq"


def dlq_id(topic: str, partition: int, offset: int) -> str:
    """`<dlq topic>:<partition>:<offset>` (Kafka topic names cannot contain ':')."""
    return f"{topic}:{partition}:{offset}"


def parse_dlq_id(text: str) -> tuple[str, int, int]:
    topic, _, rest = text.strip().partition(":")
    partition, _, offset = rest.partition(":")
    if not topic or not partition.isdigit() or not offset.isdigit():
        raise ValueError(f"{text!r} is not a DLQ message id (<dlq topic>:<partition>:<offset>)")
    return topic, int(partition), int(offset)


def as_dlq_topic(topic: str) -> str:
    """Accept either the DLQ topic or the topic it belongs to."""
    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    envelope: ErrorEnvelope | None
    problem: str | None = None  # why `envelope` is None
    headers: Sequence[tuple[str, bytes]] = ()

    @classmethod
    def from_record(
        cls,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> DeadLetter:
        headers = tuple(headers)
        try:
            envelope = ErrorEnvelope.model_validate_json(value or b"")
        except ValidationError as exc:
            return cls(
                topic, partition, offset, timestamp_ms, key, value, None, describe(exc), headers
            )
        return cls(topic, partition, offset, timestamp_ms, key, value, envelope, None, headers)

    @property
    def id(self) -> str:
        return dlq_id(self.topic, self.partition, self.offset)

    @property
    def failed_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    @property
    def code(self) -> str:
        return self.envelope.error.code if self.envelope else "UNREADABLE_DEAD_LETTER"

    @property
    def request_id(self) -> str | None:
        return request_id_of(self.envelope, self.headers) if self.envelope else None

    @property
    def original_topic(self) -> str | None:
        return self.envelope.dead_letter.original_topic if self.envelope else None

    @property
    def original_position(self) -> str:
        if self.envelope is None:
            return "-"
        dead = self.envelope.dead_letter
        if dead.original_partition < 0:  # dead-lettered after commit (webhook deliveries)
            return f"{dead.original_topic} (after commit)"
        return f"{dead.original_topic}/{dead.original_partition}/{dead.original_offset}"

    @property
    def short_message(self) -> str:
        text = self.envelope.error.message if self.envelope else (self.problem or "")
        return text if len(text) <= 80 else text[:77] + "..."

    def original_key(self) -> bytes | None:
        if self.envelope is None:
            return None
        key = self.envelope.dead_letter.original_key
        return key.encode() if key is not None else None

    def original_value(self) -> bytes | None:
        """The bytes of the record that failed (for a webhook job: the job's envelope)."""
        return original_value_bytes(self.envelope.original) if self.envelope else None

    def unreplayable_reason(self) -> str | None:
        if self.envelope is None:
            return "not an error envelope"
        if self.original_value() is None:
            return "the error envelope holds no original value"
        return None
