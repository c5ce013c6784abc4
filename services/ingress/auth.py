"""Who may call the ingress: a bearer token, or an HMAC signature over timestamp + body.

The checks themselves live in `services.common.security.hmac_auth` (constant-time, 5-minute
window); this module only fetches the credentials from the secrets provider and picks the
scheme. Credentials are read on every request, so a rotated secret is used at once (the AWS
provider caches for its TTL and is invalidated after a refusal).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from enum import StrEnum

from services.common.errors import ConfigurationError
from services.common.security import AuthenticationError, ReplayCache, SecretsProvider
from services.common.security.errors import AuthErrorCode
from services.common.security.hmac_auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_bearer,
    verify_request,
)
from services.common.security.secrets import EnvSecretsProvider, SecretError

_SEPARATORS = re.compile(r"[\s,]+")


class Scheme(StrEnum):
    BEARER = "bearer"
    HMAC = "hmac"


def split_values(secret: str) -> list[str]:
    """`"a, b\\nc"` -> `["a", "b", "c"]`: several valid credentials during a rotation."""
    return [part for part in _SEPARATORS.split(secret) if part]


class RequestAuthenticator:
    def __init__(
        self,
        provider: SecretsProvider,
        *,
        tokens_secret: str,
        hmac_secret: str,
        window_s: float,
        replay_cache: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._provider = provider
        self._tokens_secret = tokens_secret
        self._hmac_secret = hmac_secret
        self._window_s = window_s
        self._replay_cache = replay_cache
        self._clock = clock

    def authenticate(
        self, headers: Mapping[str, str], body: bytes, *, replayable: bool = False
    ) -> Scheme:
        """The scheme that vouched for the request; `AuthenticationError` otherwise.

        `replayable`: the request is a safe read, so the same signature may come twice."""
        authorization = headers.get("authorization")
        if authorization is not None:
            try:
                verify_bearer(authorization, self._credentials(self._tokens_secret))
            except AuthenticationError:
                self._provider.invalidate(self._tokens_secret)
                raise
            return Scheme.BEARER
        if headers.get(SIGNATURE_HEADER) is None and headers.get(TIMESTAMP_HEADER) is None:
            raise AuthenticationError(
                AuthErrorCode.MISSING_CREDENTIALS,
                f"send 'Authorization: Bearer <token>' or {TIMESTAMP_HEADER} + {SIGNATURE_HEADER}",
            )
        secrets = [s.encode() for s in self._credentials(self._hmac_secret)]
        try:
            verify_request(
                secrets,
                headers.get(TIMESTAMP_HEADER),
                headers.get(SIGNATURE_HEADER),
                body,
                now=self._clock(),
                window_s=self._window_s,
                replay_cache=None if replayable else self._replay_cache,
            )
        except AuthenticationError as exc:
            if exc.code is AuthErrorCode.BAD_REQUEST_SIGNATURE:
                self._provider.invalidate(self._hmac_secret)
            raise
        return Scheme.HMAC

    def require_credentials(self) -> None:
        """Refuse to start without a single credential: an ingress that can authenticate no
        one would report ready and answer 401 to every request."""
        if self._credentials(self._tokens_secret) or self._credentials(self._hmac_secret):
            return
        names = (self._tokens_secret, self._hmac_secret)
        if isinstance(self._provider, EnvSecretsProvider):
            where = " or ".join(EnvSecretsProvider.variable(n) for n in names)
        else:
            where = f"the secret {names[0]!r} or {names[1]!r} in {self._provider.source}"
        raise ConfigurationError(
            f"no client credentials configured: set {where} (comma-separated values; "
            "bearer tokens or HMAC secrets), else every request would be refused"
        )

    def _credentials(self, name: str) -> list[str]:
        try:
            return split_values(self._provider.get(name))
        except SecretError:
            # Not configured: nothing can match, and the caller gets an ordinary 401.
            return []
