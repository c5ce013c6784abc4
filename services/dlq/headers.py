"""The one place the headers of a replayed record are built.

A replay carries the original record's headers minus its old signature (the token of the
original producer is spent: its jti was already seen at another position), a
`revops-replay-of` header naming the DLQ message, and, when envelope signing is on, a fresh
token signed by the `dlq_replay` identity (an allowed issuer on every topic, see
`services.common.security.policy`).
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from contracts import AgentName, Envelope
from services.common.dlq import HEADER_DLQ_CODE, REPLAY_HEADER
from services.common.envelope_security import EnvelopeSecurity
from services.common.records import Outgoing
from services.common.security import AUTH_HEADER
from services.common.settings import Settings
from services.dlq.messages import DeadLetter

_DROPPED = {AUTH_HEADER, HEADER_DLQ_CODE, REPLAY_HEADER}

Headers = list[tuple[str, bytes]]


class ReplayHeaders:
    def __init__(self, settings: Settings) -> None:
        self._security = (
            EnvelopeSecurity(AgentName.DLQ_REPLAY.value, settings)
            if settings.signing_enabled
            else None
        )

    def build(self, message: DeadLetter, topic: str, key: bytes | None, value: bytes) -> Headers:
        assert message.envelope is not None
        headers = {
            name: text
            for name, text in message.envelope.original.headers.items()
            if name not in _DROPPED
        }
        headers[REPLAY_HEADER] = message.id
        if self._security is not None:
            out = Outgoing(topic, key.decode() if key else None, _signed_model(message, value))
            headers.update(self._security.sign(out, value))
        return [(name, text.encode()) for name, text in headers.items()]


def _signed_model(message: DeadLetter, value: bytes) -> BaseModel:
    """The envelope being replayed (its message id names the token), else the error envelope."""
    try:
        return Envelope.model_validate_json(value)
    except ValidationError:
        assert message.envelope is not None
        return message.envelope
