"""Who gets in and what they may do: tokens from the secrets provider, sessions, roles,
CSRF, same-origin changes and the security headers on every response."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from services.common.security.secrets import EnvSecretsProvider
from services.console.auth import Role, SignInError, TokenAuthenticator, parse_entries
from services.console.pages import Components
from services.console.web import safe_next
from tests.unit.console.conftest import BASE_URL, csrf_of, sign_in

PAGES = ["/inbox", "/overview", "/deals", "/accounts", "/operations"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_asks_for_sign_in_first(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/signin?next={path.replace('/', '%2F')}"


def test_a_valid_token_signs_in_and_lands_on_the_page_asked_for(client: TestClient) -> None:
    form = client.get("/signin?next=/overview")
    response = client.post(
        "/signin",
        data={"csrf": csrf_of(form.text), "token": "tok-victor", "next": "/overview"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/overview"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get("/overview")
    assert page.status_code == 200 and "victor" in page.text and "viewer" in page.text


def test_a_wrong_token_is_refused_without_saying_more(client: TestClient) -> None:
    form = client.get("/signin")
    response = client.post("/signin", data={"csrf": csrf_of(form.text), "token": "tok-guess"})
    assert response.status_code == 401
    assert "this access token is not valid" in response.text
    assert client.get("/inbox", follow_redirects=False).status_code == 303


def test_the_sign_in_form_needs_its_own_csrf_token(client: TestClient) -> None:
    client.get("/signin")
    response = client.post("/signin", data={"csrf": "forged", "token": "tok-alice"})
    assert response.status_code == 401 and "expired" in response.text
    assert client.get("/inbox", follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session_for_good(client: TestClient) -> None:
    sign_in(client)
    cookie = client.cookies.get("revops_console_session")
    assert cookie is not None
    page = client.get("/inbox")
    client.post("/signout", data={"csrf": csrf_of(page.text)})
    stale = TestClient(client.app, base_url=BASE_URL, cookies={"revops_console_session": cookie})
    assert stale.get("/inbox", follow_redirects=False).status_code == 303


def first_open_insight(client: TestClient) -> tuple[str, int, str]:
    page = client.get("/inbox?status=open")
    match = re.search(
        r'data-insight-id="([^"]+)" data-status="open" data-version="(\d+)"', page.text
    )
    assert match, "the world has open insights"
    return match.group(1), int(match.group(2)), csrf_of(page.text)


def test_a_viewer_sees_no_action_and_a_forged_change_is_refused(
    client: TestClient, components: Components
) -> None:
    sign_in(client, "tok-victor")
    page = client.get("/inbox")
    assert 'name="action"' not in page.text and "Read only" in page.text
    insight_id, version, csrf = first_open_insight(client)
    response = client.post(
        f"/insights/{insight_id}/transition",
        data={"csrf": csrf, "action": "ack", "version": str(version)},
    )
    assert response.status_code == 403 and "only operators" in response.text
    assert components.insights.get(insight_id).version == version  # nothing changed


def test_a_change_without_the_csrf_token_is_refused(
    operator: TestClient, components: Components
) -> None:
    insight_id, version, _ = first_open_insight(operator)
    response = operator.post(
        f"/insights/{insight_id}/transition", data={"action": "ack", "version": str(version)}
    )
    assert response.status_code == 403 and "security token" in response.text
    assert components.insights.get(insight_id).status.value == "open"


def test_a_change_sent_from_another_site_is_refused(
    operator: TestClient, components: Components
) -> None:
    insight_id, version, csrf = first_open_insight(operator)
    response = operator.post(
        f"/insights/{insight_id}/transition",
        data={"csrf": csrf, "action": "ack", "version": str(version)},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403 and "another site" in response.text
    assert components.insights.get(insight_id).status.value == "open"


@pytest.mark.parametrize("path", ["/signin", *PAGES, "/static/console.css", "/nope"])
def test_security_headers_on_every_response(operator: TestClient, path: str) -> None:
    response = operator.get(path)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    if not path.startswith("/static/"):
        assert response.headers["cache-control"] == "no-store"


def test_pages_hold_no_inline_script_or_style(operator: TestClient) -> None:
    for path in PAGES:
        text = operator.get(path).text
        assert "<script>" not in text and " style=" not in text and "<style" not in text
        assert "on" + "click=" not in text


def test_an_oversized_form_is_refused(operator: TestClient) -> None:
    response = operator.post("/signout", data={"csrf": "x" * 40_000})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/deals?stage=Propose", "/deals?stage=Propose"),
        ("https://evil.example/", "/inbox"),
        ("//evil.example/", "/inbox"),
        ("/\\evil.example", "/inbox"),
        (None, "/inbox"),
        ("javascript:alert(1)", "/inbox"),
    ],
)
def test_redirects_after_sign_in_stay_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_tokens_rotate_without_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVOPS_SECRET_CONSOLE_USERS", "ann:operator:old-token")
    tokens = TokenAuthenticator(EnvSecretsProvider(), "console-users")
    assert tokens.authenticate("old-token").name == "ann"
    monkeypatch.setenv("REVOPS_SECRET_CONSOLE_USERS", "ann:viewer:new-token")
    with pytest.raises(SignInError):
        tokens.authenticate("old-token")
    assert tokens.authenticate("new-token").role is Role.VIEWER


def test_malformed_entries_are_skipped_not_fatal() -> None:
    entries = parse_entries("ok:operator:t1, broken, bad:admin:t2, :viewer:t3, v:viewer:a:b")
    assert [(e.user, e.role.value) for e in entries] == [("ok", "operator"), ("v", "viewer")]


def test_no_configured_tokens_means_nobody_gets_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVOPS_SECRET_CONSOLE_USERS", raising=False)
    tokens = TokenAuthenticator(EnvSecretsProvider(), "console-users")
    assert not tokens.configured()
    with pytest.raises(SignInError):
        tokens.authenticate("anything")


def test_a_replay_may_only_name_this_stack_s_dead_letter_topics(operator: TestClient) -> None:
    csrf = csrf_of(operator.get("/operations").text)
    for topic in ("someone-else.triggers.dlq", "revops.triggers"):
        response = operator.post(
            "/operations/dlq/dry-run", data={"csrf": csrf, "topic": topic, "code": "X"}
        )
        assert response.status_code == 404 and "dead-letter topics" in response.text
    refused = operator.post(
        "/operations/dlq/replay",
        data={"csrf": csrf, "topic": "revops.triggers.dlq", "code": "X", "digest": "d"},
        follow_redirects=False,
    )
    assert refused.status_code == 303  # no confirmation ticked: back to operations, nothing sent
    assert "Tick the confirmation box" in operator.get("/operations").text
