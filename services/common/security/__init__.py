"""Security plumbing shared by every service: signed envelopes, secrets, redaction, HMAC.

Import from the submodules (`envelope_signing`, `keys`, `replay_cache`, `secrets`,
`redaction`, `hmac_auth`, `policy`); this package re-exports the names the runtime uses.
"""

from services.common.security.envelope_signing import (
    AUTH_HEADER,
    EnvelopeSigner,
    EnvelopeVerifier,
    VerifiedClaims,
    record_position,
)
from services.common.security.errors import AuthenticationError, AuthErrorCode
from services.common.security.keys import SERVICES, KeyRing, ensure_dev_keys
from services.common.security.redaction import redact_text, redaction_processor, register_secret
from services.common.security.replay_cache import (
    InMemoryReplayCache,
    ReplayCache,
    SharedReplayCache,
)
from services.common.security.secrets import SecretsProvider, provider_from_settings

__all__ = [
    "AUTH_HEADER",
    "SERVICES",
    "AuthErrorCode",
    "AuthenticationError",
    "EnvelopeSigner",
    "EnvelopeVerifier",
    "InMemoryReplayCache",
    "KeyRing",
    "ReplayCache",
    "SecretsProvider",
    "SharedReplayCache",
    "VerifiedClaims",
    "ensure_dev_keys",
    "provider_from_settings",
    "record_position",
    "redact_text",
    "redaction_processor",
    "register_secret",
]
