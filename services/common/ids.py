"""Every id the product derives: a uuid5 of the request id (and what else names the thing),
so a redelivered record yields the same ids in every service (docs/architecture.md,
"Messages"). One namespace per kind of id, all of them here; their values never change
(stored ids, idempotency keys and action ids depend on them)."""

from __future__ import annotations

import uuid

_NAMESPACES = {
    "message": uuid.UUID("5f0b7a34-3f3e-4c1e-9d6e-2b7c1f0e9a11"),
    "insight": uuid.UUID("6f1c1f0e-5d0b-4c1e-9d0a-7b1f3a2e9c41"),
    "action": uuid.UUID("0b6c7a52-3f7e-4d8e-b1a4-1f5f0e2d9a10"),
    "event": uuid.UUID("5c0e7d1a-94b2-4f3e-8a61-2d7c9b0e4f18"),
    "compensation": uuid.UUID("9a3e2c6d-8b1f-4f0a-a7d2-5c4e3b2a1f90"),
}


def derived_uuid(kind: str, *parts: str) -> str:
    """The uuid5 of `parts` joined by "|" in the namespace of `kind` (insight, action, ...)."""
    return str(uuid.uuid5(_NAMESPACES[kind], "|".join(parts)))


def stable_id(prefix: str, *parts: str) -> str:
    return f"{prefix}-{derived_uuid('message', *parts)}"


def flow_id_for(request_id: str) -> str:
    """The one id of a request's flow: every service derives it from the request id (no
    lookup needed); envelopes, executions and flow outputs all carry this one."""
    return stable_id("flow", request_id)
