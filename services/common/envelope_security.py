"""Signed envelopes for the runtime: sign what a service produces, verify what it consumes.

The cryptography lives in `services.common.security`; this module only decides which key,
audience and topics. Consumers verify a whole batch at once (`BatchVerifier`: one signature
check per distinct batch root, one replay-cache transaction), accepting records signed per
record and per batch alike. Producers sign one root per flush and audience (`sign_batch`,
`REVOPS_SIGNING_MODE=batch`, the default) or, with `record`, each record (`sign`). Raw triggers
are not verified (they come from outside: the Kafka ACL and the ingress authenticate them).
DLQ records are not signed (only the replay tool reads them, and it signs what it
re-publishes with its own identity).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pydantic import BaseModel

from contracts.envelope import AnyEnvelope
from services.common.errors import PermanentError, authentication_failed_code
from services.common.records import Outgoing
from services.common.security import (
    AUTH_HEADER,
    AuthenticationError,
    InMemoryReplayCache,
    KeyRing,
    SharedReplayCache,
    ensure_dev_keys,
)
from services.common.security.batch_signing import (
    BatchEntry,
    BatchSigner,
    BatchVerifier,
    ConsumedRecord,
)
from services.common.security.policy import topic_consumers, topic_producers
from services.common.security.replay_cache import BatchReplayCache
from services.common.settings import Settings


def message_id_of(message: BaseModel) -> str:
    if isinstance(message, AnyEnvelope):
        return message.metadata.message_id
    return f"msg-{uuid.uuid4()}"


class EnvelopeSecurity:
    def __init__(
        self, service: str, settings: Settings, *, replay_cache: BatchReplayCache | None = None
    ) -> None:
        keys_dir = settings.resolved_keys_dir
        if settings.auto_dev_keys:
            ensure_dev_keys(keys_dir)
        ring = KeyRing.from_directory(keys_dir, service)
        self._signer = BatchSigner(service, ring)
        self._verifier = BatchVerifier(
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
        self.batch_signing = settings.signing_mode == "batch"

    @classmethod
    def for_reader(cls, audience: str, settings: Settings) -> EnvelopeSecurity:
        """Verification for a reader outside the agents (CLI, ingress): it signs nothing and
        remembers token ids in memory only (it may re-read a topic; same position is benign)."""
        return cls(audience, settings, replay_cache=InMemoryReplayCache())

    def audience_of(self, out: Outgoing) -> str | None:
        """The service a produced record is signed for; None: the record is not signed."""
        return out.audience or self._audiences.get(out.topic)

    def sign(self, out: Outgoing, value: bytes) -> dict[str, str]:
        """A per-record token for one record (a producer with a single record to send)."""
        audience = self.audience_of(out)
        if audience is None:
            return {}
        # message_id is deterministic (a re-published record keeps its idempotency key), so
        # the token id adds a nonce: a legitimate re-publish gets a fresh jti, while a captured
        # record replayed elsewhere repeats its jti and is refused.
        jti = f"{message_id_of(out.message)}.{uuid.uuid4().hex[:12]}"
        return {AUTH_HEADER: self._signer.sign(value, audience, jti)}

    def sign_batch(self, entries: Sequence[BatchEntry]) -> list[dict[str, str]]:
        """Batch headers for records about to be produced together, one root per audience;
        each entry's partition must be the one its record is produced to."""
        return self._signer.sign_batch(entries) if entries else []

    def verify(self, record: ConsumedRecord) -> None:
        """Raise `PermanentError` (AUTHENTICATION_FAILED_*) unless `record` is authentic."""
        refused = self.verify_batch([record])[0]
        if refused is not None:
            raise refused

    def verify_batch(self, records: Sequence[ConsumedRecord]) -> list[PermanentError | None]:
        """Per record, in order: None if it is authentic (or on an unverified topic), else
        the `PermanentError` to dead-letter it with. One replay-cache transaction for all."""
        checked = [r for r in records if r.topic not in self._unverified]
        answers = iter(self._verifier.verify_batch(checked) if checked else [])
        return [
            None if record.topic in self._unverified else _refusal(next(answers))
            for record in records
        ]


def _refusal(answer: object) -> PermanentError | None:
    if not isinstance(answer, AuthenticationError):
        return None
    refused = PermanentError(
        f"message failed authentication: {answer.reason}",
        code=authentication_failed_code(answer.code),
    )
    refused.__cause__ = answer
    return refused
