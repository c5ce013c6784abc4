"""Transport-neutral views of what a service consumes and produces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp_ms: int | None = None

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class ProducedMark:
    """An `on_produced` that can run for many records at once: once a flush's records are
    acknowledged, the runtime calls `mark` one time with the `item` of every record that
    carries that same `mark` (one store statement for a batch's outputs instead of one per
    record)."""

    mark: Callable[[list[Any]], None]
    item: Any


@dataclass
class Outgoing:
    """A record to produce. `message` is an Envelope or ErrorEnvelope (or any contract)."""

    topic: str
    key: str | None
    message: BaseModel
    headers: dict[str, str] = field(default_factory=dict)
    audience: str | None = None  # consuming service, for the signed-envelope token
    # Called once Kafka acknowledged the record (e.g. "flow output published"), before the
    # input's offset is committed.
    on_produced: Callable[[], None] | ProducedMark | None = None


@dataclass
class Parsed:
    """What a subscription's parser made of a record.

    `idempotency_key` decides duplicates; `log_context` is bound to every log line;
    `body` is whatever the handler needs (an Envelope with its decoded payload, a trigger).
    """

    idempotency_key: str
    body: Any
    log_context: dict[str, str] = field(default_factory=dict)
    envelope: Any = None


class Deferred(Exception):
    """A batch handler's answer for a record it did not attempt because an earlier record
    of the same Kafka key failed in the same batch (per-key order): the runtime handles it
    per record, after the failed one."""


BatchOutcome = list[Outgoing] | BaseException
BatchHandler = Callable[[Sequence[tuple[Parsed, Record]]], Awaitable[list[BatchOutcome]]]
