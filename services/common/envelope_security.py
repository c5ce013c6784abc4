"""Signed envelopes for the runtime: sign what a service produces, verify what it consumes.

The cryptography lives in `services.common.security`; this module only decides which key,
audience and topics. Raw triggers are not verified (they come from outside: the Kafka ACL and
the ingress authenticate them). DLQ records are not signed (only the replay tool reads them,
and it signs what it re-publishes with its own identity).
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from contracts import Envelope
from services.common.errors import PermanentError, authentication_failed_code
from services.common.records import Outgoing, Record
from services.common.security import (
    AUTH_HEADER,
    AuthenticationError,
    EnvelopeSigner,
    EnvelopeVerifier,
    InMemoryReplayCache,
    KeyRing,
    ReplayCache,
    SharedReplayCache,
    ensure_dev_keys,
    record_position,
)
from services.common.security.policy import topic_consumers, topic_producers
from services.common.settings import Settings


def message_id_of(message: BaseModel) -> str:
    if isinstance(message, Envelope):
        return message.metadata.message_id
    return f"msg-{uuid.uuid4()}"


class EnvelopeSecurity:
    def __init__(
        self, service: str, settings: Settings, *, replay_cache: ReplayCache | None = None
    ) -> None:
        keys_dir = settings.resolved_keys_dir
        if settings.auto_dev_keys:
            ensure_dev_keys(keys_dir)
        ring = KeyRing.from_directory(keys_dir, service)
        self._signer = EnvelopeSigner(service, ring)
        self._verifier = EnvelopeVerifier(
            service,
            ring,
            topic_producers(settings.topics),
            replay_cache=replay_cache
            or SharedReplayCache(
                settings.resolved_state_dir / f"replay-{service}.db", url=settings.database_url
            ),
        )
        self._audiences = topic_consumers(settings.topics)
        self._unverified = {settings.topics.triggers}

    @classmethod
    def for_reader(cls, audience: str, settings: Settings) -> EnvelopeSecurity:
        """Verification for a reader outside the agents (CLI, ingress): it signs nothing and
        remembers token ids in memory only (it may re-read a topic; same position is benign)."""
        return cls(audience, settings, replay_cache=InMemoryReplayCache())

    def sign(self, out: Outgoing, value: bytes) -> dict[str, str]:
        audience = out.audience or self._audiences.get(out.topic)
        if audience is None:
            return {}
        # message_id is deterministic (a re-published record keeps its idempotency key), so
        # the token id adds a nonce: a legitimate re-publish gets a fresh jti, while a captured
        # record replayed elsewhere repeats its jti and is refused.
        jti = f"{message_id_of(out.message)}.{uuid.uuid4().hex[:12]}"
        return {AUTH_HEADER: self._signer.sign(value, audience, jti)}

    def verify(self, record: Record) -> None:
        if record.topic in self._unverified:
            return
        token = record.header(AUTH_HEADER)
        try:
            self._verifier.verify(
                token.decode("utf-8", "replace") if token else None,
                record.value or b"",
                record.topic,
                produced_at=(record.timestamp_ms or 0) / 1000,
                position=record_position(record.topic, record.partition, record.offset),
            )
        except AuthenticationError as exc:
            raise PermanentError(
                f"message failed authentication: {exc.reason}",
                code=authentication_failed_code(exc.code),
            ) from exc
