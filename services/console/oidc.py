"""Sign-in through an OpenID Connect provider: authorization code flow with PKCE.

1. `/auth/oidc/start`: a fresh state, nonce and PKCE verifier are kept (state hashed) and
   the browser goes to the provider's authorization endpoint; the state also goes into a
   short-lived cookie, so a callback only completes in the browser that started it.
2. `/auth/oidc/callback`: the state must match the cookie and a pending sign-in; the code is
   exchanged at the token endpoint (client secret from the secrets provider); the ID token's
   signature is checked against the provider's JWKS (refetched once when it names an unknown
   key: rotation), then issuer, audience, expiry and nonce. The role comes from a claim.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from services.common.security import SecretsProvider
from services.common.security.secrets import SecretError
from services.common.stores.database import Database
from services.console.auth import Role, SignInError, User
from services.console.config import ConsoleSettings

STATE_COOKIE = "revops_console_oidc"
PENDING_TTL_S = 600.0
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
JWKS_REFRESH_MIN_S = 30.0  # an unknown kid refetches the key set at most this often
LEEWAY_S = 60


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class OidcSignIn:
    def __init__(
        self,
        config: ConsoleSettings,
        provider: SecretsProvider,
        store: Database,
        http: httpx.Client | None = None,
    ) -> None:
        assert config.oidc_issuer and config.oidc_client_id, "OIDC is not configured"
        self._config = config
        self._issuer = config.oidc_issuer.rstrip("/")
        self._client_id = config.oidc_client_id
        self._secrets = provider
        self._store = store
        self._http = http or httpx.Client(timeout=10.0)
        self._metadata: ProviderMetadata | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched_at = 0.0
        self._lock = threading.Lock()

    # -- step 1 ---------------------------------------------------------------------------
    def start(self, redirect_uri: str) -> tuple[str, str]:
        """(URL to send the browser to, state for the cookie)."""
        meta = self.metadata()
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO console_oidc_pending (state_hash, nonce, verifier, created_at) "
                "VALUES (?, ?, ?, ?)",
                (_hash(state), nonce, verifier, time.time()),
            )
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": redirect_uri,
                "scope": self._config.oidc_scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{meta.authorization_endpoint}?{query}", state

    # -- step 2 ---------------------------------------------------------------------------
    def finish(self, code: str, state: str, cookie_state: str | None, redirect_uri: str) -> User:
        if not code or not state:
            raise SignInError("the provider sent no code or state back")
        if not cookie_state or not secrets.compare_digest(state, cookie_state):
            raise SignInError("this sign-in was started in another browser or has expired")
        nonce, verifier = self._take_pending(state)
        id_token = self._exchange(code, verifier, redirect_uri)
        claims = self.verify_id_token(id_token, nonce)
        return self._user(claims)

    def _take_pending(self, state: str) -> tuple[str, str]:
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT nonce, verifier, created_at FROM console_oidc_pending WHERE state_hash = ?",
                (_hash(state),),
            ).fetchone()
            conn.execute("DELETE FROM console_oidc_pending WHERE state_hash = ?", (_hash(state),))
        if row is None or row["created_at"] < time.time() - PENDING_TTL_S:
            raise SignInError("this sign-in has expired or was already used; start again")
        return row["nonce"], row["verifier"]

    def _exchange(self, code: str, verifier: str, redirect_uri: str) -> str:
        try:
            secret = self._secrets.get(self._config.oidc_client_secret)
        except SecretError as exc:
            raise SignInError(f"single sign-on is not set up: {exc}") from None
        try:
            response = self._http.post(
                self.metadata().token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": verifier,
                },
                auth=(self._client_id, secret),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise SignInError(f"the provider's token endpoint did not answer ({exc})") from None
        if response.status_code != 200:
            raise SignInError(f"the provider refused the code (HTTP {response.status_code})")
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise SignInError("the provider's answer holds no ID token")
        return id_token

    def verify_id_token(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise SignInError("the ID token is not a JWT") from None
        key = self._signing_key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=self._client_id,
                issuer=self.metadata().issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise SignInError(f"the ID token was refused: {exc}") from None
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignInError("the ID token was refused: its nonce does not match this sign-in")
        return claims

    def _user(self, claims: dict[str, Any]) -> User:
        name = claims.get(self._config.oidc_user_claim) or claims["sub"]
        values = claims.get(self._config.oidc_role_claim) or []
        values = [values] if isinstance(values, str) else list(values)
        operator = any(v in self._config.oidc_operator_values for v in values)
        return User(str(name), Role.OPERATOR if operator else Role.VIEWER)

    # -- provider metadata and keys ------------------------------------------------------
    def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            document = self._get_json(f"{self._issuer}/.well-known/openid-configuration")
            try:
                self._metadata = ProviderMetadata(
                    issuer=str(document["issuer"]),
                    authorization_endpoint=str(document["authorization_endpoint"]),
                    token_endpoint=str(document["token_endpoint"]),
                    jwks_uri=str(document["jwks_uri"]),
                )
            except KeyError as exc:
                raise SignInError(f"the provider's discovery document lacks {exc}") from None
            if self._metadata.issuer.rstrip("/") != self._issuer:
                raise SignInError("the provider's discovery document names another issuer")
        return self._metadata

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._keys_fetched_at > (
                JWKS_REFRESH_MIN_S if self._keys else 0
            ):
                self._keys = self._fetch_keys()
                self._keys_fetched_at = time.monotonic()
            key = self._keys.get(kid)
        if key is None:
            raise SignInError("the ID token is signed with a key the provider does not publish")
        return key

    def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        document = self._get_json(self.metadata().jwks_uri)
        try:
            key_set = jwt.PyJWKSet.from_dict(document)
        except jwt.PyJWTError as exc:
            raise SignInError(f"the provider's key set is not usable: {exc}") from None
        return {str(k.key_id or ""): k for k in key_set.keys}

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInError(f"the sign-on provider did not answer at {url} ({exc})") from None
        if not isinstance(document, dict):
            raise SignInError(f"the sign-on provider answered {url} with no JSON object")
        return document
