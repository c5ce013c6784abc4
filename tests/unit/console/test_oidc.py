"""Sign-in through an OpenID Connect provider: a loopback provider (discovery, JWKS, token
endpoint checking the client secret and PKCE) with a locally generated RSA key."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from services.console import oidc as oidc_module
from services.console.app import build_app
from services.console.auth import Role, SignInError
from services.console.config import ConsoleSettings
from services.console.oidc import OidcSignIn
from services.console.pages import Components
from tests.unit.console.conftest import BASE_URL

CLIENT_ID = "revops-console"
CLIENT_SECRET = "s3cret-client"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Provider:
    """What the loopback provider knows: its keys, the codes it issued, what it was sent."""

    base: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    signing_kid: str = "k1"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    jwks_fetches: int = 0

    def jwks(self) -> dict[str, Any]:
        found = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            found.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": found}

    def id_token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.base,
            "aud": CLIENT_ID,
            "sub": "user-1",
            "email": "pat@example.com",
            "groups": ["revops-operators"],
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        key = self.keys[self.signing_kid]
        return jwt.encode(body, key, algorithm="RS256", headers={"kid": self.signing_kid})

    def authorize(self, authorize_url: str, **claims: Any) -> tuple[str, str]:
        """What the provider's login page does: issue a code for this request."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        code = f"code-{len(self.codes)}"
        self.codes[code] = {"query": query, "claims": claims}
        return code, query["state"]


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "issuer": provider.base,
                        "authorization_endpoint": provider.base + "/authorize",
                        "token_endpoint": provider.base + "/token",
                        "jwks_uri": provider.base + "/jwks",
                    },
                )
            elif self.path == "/jwks":
                provider.jwks_fetches += 1
                self._json(200, provider.jwks())
            else:
                self._json(404, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            provider.token_requests.append(form)
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {basic}":
                self._json(401, {"error": "invalid_client"})
                return
            issued = provider.codes.pop(form.get("code", ""), None)
            if issued is None:
                self._json(400, {"error": "invalid_grant"})
                return
            query = issued["query"]
            challenge = (
                base64.urlsafe_b64encode(
                    hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                )
                .rstrip(b"=")
                .decode()
            )
            if (
                challenge != query["code_challenge"]
                or form["redirect_uri"] != query["redirect_uri"]
            ):
                self._json(400, {"error": "invalid_grant"})
                return
            claims = {"nonce": query["nonce"], **issued["claims"]}
            self._json(200, {"id_token": provider.id_token(**claims), "token_type": "Bearer"})

    return Handler


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider(keys={"k1": new_key()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def sso(components: Components, provider: Provider, monkeypatch: pytest.MonkeyPatch) -> OidcSignIn:
    monkeypatch.setenv("REVOPS_SECRET_CONSOLE_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    config = ConsoleSettings(oidc_issuer=provider.base, oidc_client_id=CLIENT_ID)
    sign_on = OidcSignIn(config, components.tokens._provider, components.web.sessions._store)
    components.oidc = sign_on
    components.config = config
    return sign_on


def start(client: TestClient) -> str:
    response = client.get("/auth/oidc/start", follow_redirects=False)
    assert response.status_code == 303
    return response.headers["location"]


def test_sign_in_through_the_provider(
    components: Components, sso: OidcSignIn, provider: Provider
) -> None:
    client = TestClient(build_app(components), base_url=BASE_URL)
    assert "Sign in with single sign-on" in client.get("/signin").text
    authorize = start(client)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider.base + "/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [BASE_URL + "/auth/oidc/callback"]
    code, state = provider.authorize(authorize)
    response = client.get(f"/auth/oidc/callback?code={code}&state={state}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/inbox"
    page = client.get("/inbox")
    assert page.status_code == 200 and "pat@example.com" in page.text and "operator" in page.text
    (sent,) = provider.token_requests
    assert sent["grant_type"] == "authorization_code" and len(sent["code_verifier"]) >= 43


def test_without_the_operator_group_the_user_is_a_viewer(
    components: Components, sso: OidcSignIn, provider: Provider
) -> None:
    client = TestClient(build_app(components), base_url=BASE_URL)
    code, state = provider.authorize(start(client), groups=["sales"])
    client.get(f"/auth/oidc/callback?code={code}&state={state}")
    assert 'role--viewer">viewer' in client.get("/inbox").text


def test_a_callback_in_another_browser_or_twice_is_refused(
    components: Components, sso: OidcSignIn, provider: Provider
) -> None:
    app = build_app(components)
    victim, attacker = TestClient(app, base_url=BASE_URL), TestClient(app, base_url=BASE_URL)
    code, state = provider.authorize(start(attacker))
    refused = victim.get(f"/auth/oidc/callback?code={code}&state={state}")
    assert refused.status_code == 401 and "another browser" in refused.text
    assert victim.get("/inbox", follow_redirects=False).status_code == 303
    done = attacker.get(f"/auth/oidc/callback?code={code}&state={state}", follow_redirects=False)
    assert done.status_code == 303
    again = attacker.get(f"/auth/oidc/callback?code={code}&state={state}")
    assert again.status_code == 401


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "(?i)audience"),
        ({"iss": "http://127.0.0.1:9/other"}, "(?i)issuer"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "(?i)expired"),
        ({"nonce": "not-this-sign-in"}, "nonce"),
        ({"exp": None}, "exp"),
    ],
)
def test_id_tokens_that_do_not_hold_are_refused(
    sso: OidcSignIn, provider: Provider, claims: dict[str, Any], reason: str
) -> None:
    token = provider.id_token(**{"nonce": "n-1", **claims})
    with pytest.raises(SignInError, match=reason):
        sso.verify_id_token(token, "n-1")


def test_a_token_signed_with_a_key_the_provider_does_not_publish_is_refused(
    sso: OidcSignIn, provider: Provider
) -> None:
    provider.keys["rogue"] = new_key()
    provider.signing_kid = "rogue"
    forged = provider.id_token(nonce="n")
    del provider.keys["rogue"]
    with pytest.raises(SignInError, match="does not publish"):
        sso.verify_id_token(forged, "n")
    # same kid as the real key, other key material: the signature check fails
    provider.signing_kid = "k1"
    real = provider.keys["k1"]
    provider.keys["k1"] = new_key()
    tampered = provider.id_token(nonce="n")
    provider.keys["k1"] = real
    with pytest.raises(SignInError, match="Signature verification failed"):
        sso.verify_id_token(tampered, "n")


def test_a_rotated_provider_key_is_fetched_once_when_first_seen(
    sso: OidcSignIn, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sso.verify_id_token(provider.id_token(nonce="a"), "a")["sub"] == "user-1"
    assert sso.verify_id_token(provider.id_token(nonce="b"), "b")["sub"] == "user-1"
    assert provider.jwks_fetches == 1  # cached
    monkeypatch.setattr(oidc_module, "JWKS_REFRESH_MIN_S", 0.0)
    provider.keys["k2"] = new_key()
    provider.signing_kid = "k2"
    assert sso.verify_id_token(provider.id_token(nonce="c"), "c")["sub"] == "user-1"
    assert provider.jwks_fetches == 2


def test_a_wrong_client_secret_fails_the_sign_in_with_a_reason(
    components: Components, sso: OidcSignIn, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_SECRET_CONSOLE_OIDC_CLIENT_SECRET", "wrong")
    client = TestClient(build_app(components), base_url=BASE_URL)
    code, state = provider.authorize(start(client))
    response = client.get(f"/auth/oidc/callback?code={code}&state={state}")
    assert response.status_code == 401 and "refused the code (HTTP 401)" in response.text
    assert Role.OPERATOR.value not in client.get("/signin").text.split("<main")[0]
