from __future__ import annotations

import json

import structlog

from services.common.security.redaction import (
    REDACTED,
    is_sensitive_key,
    redact_text,
    redact_value,
    redaction_processor,
    register_secret,
)
from services.common.security.secrets import EnvSecretsProvider

SECRET = "xoxb-1234-very-secret-slack-token"


def _render(**event) -> str:
    """What a log line looks like after the production processor chain."""
    chain = [
        structlog.processors.format_exc_info,
        redaction_processor,
        structlog.processors.JSONRenderer(),
    ]
    out: object = dict(event)
    for processor in chain:
        out = processor(None, "info", out)  # type: ignore[operator]
    assert isinstance(out, str)
    return out


def test_provider_values_never_reach_json_logs() -> None:
    provider = EnvSecretsProvider({"REVOPS_SECRET_SLACK_TOKEN": SECRET})
    token = provider.get("slack-token")
    line = _render(
        event=f"posting with {token}",
        request={"headers": [{"name": "x", "value": f"prefix-{token}-suffix"}]},
        attempt=2,
    )
    assert SECRET not in line
    assert json.loads(line)["attempt"] == 2
    assert json.loads(line)["event"] == f"posting with {REDACTED}"


def test_exception_tracebacks_are_redacted() -> None:
    register_secret(SECRET)
    try:
        raise RuntimeError(f"Slack said 401 for {SECRET}")
    except RuntimeError as exc:
        line = _render(event="delivery_failed", exc_info=exc, error=exc)
    assert SECRET not in line
    assert "delivery_failed" in line and "RuntimeError" in line


def test_sensitive_keys_at_any_depth() -> None:
    line = _render(
        event="call",
        password="hunter2-unregistered",
        config={"client_secret": "cs-unregistered", "nested": [{"Authorization": "x y z"}]},
        headers={"X-Api-Key": "k-unregistered", "revops-auth": "eyJhbGciOi.eyJpc3Mi.sig"},
        idempotency_key="idem-1",
        max_tokens=512,
    )
    for leaked in ("hunter2", "cs-unregistered", "x y z", "k-unregistered", "eyJpc3Mi"):
        assert leaked not in line
    data = json.loads(line)
    assert data["idempotency_key"] == "idem-1" and data["max_tokens"] == 512


def test_sensitive_key_names() -> None:
    for key in ("password", "slack_token", "API-KEY", "x_api_key", "signature", "aws_secret"):
        assert is_sensitive_key(key), key
    for key in ("idempotency_key", "partition_key", "max_tokens", "token_count", "event"):
        assert not is_sensitive_key(key), key


def test_credential_shapes_in_free_text() -> None:
    cases = {
        "Authorization: Bearer abc.def-123": "Authorization: ",
        "sent Bearer abc.def-123": "sent Bearer ",
        "connect password=hunter2 host=db": "password=",
        '{"api_key": "AKzz-unregistered"}': '"api_key": "',
        "https://bob:pa55w0rd@db.internal/x": "https://bob:",
        "id AKIAABCDEFGHIJKLMNOP used": "id ",
        "jwt eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl end": "jwt ",
        "url?token=t0k3n&x=1": "url?token=",
    }
    for text, kept in cases.items():
        out = redact_text(text)
        assert REDACTED in out and kept in out, (text, out)
    for secret_part in ("abc.def-123", "hunter2", "AKzz", "pa55w0rd", "AKIAABCD", "t0k3n"):
        assert all(secret_part not in redact_text(t) for t in cases)


def test_private_key_blocks_and_escaped_secrets() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA\n-----END PRIVATE KEY-----"
    assert redact_text(f"loaded {pem} ok") == f"loaded {REDACTED} ok"
    multi = "line-one-secret\nline-two"
    register_secret(multi)
    assert redact_text(repr({"v": multi})) == repr({"v": "X"}).replace("X", REDACTED)


def test_registered_value_inside_key_value_text_is_redacted_once() -> None:
    register_secret("hunter2-registered")
    assert redact_text("password=hunter2-registered;") == f"password={REDACTED};"


def test_short_values_are_not_registered_and_text_unchanged() -> None:
    register_secret("ab")
    assert redact_text("about a cab") == "about a cab"
    assert redact_value({"n": 1, "ok": True, "none": None}) == {"n": 1, "ok": True, "none": None}


def test_real_structlog_logger_with_json_renderer() -> None:
    import io

    buffer = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(file=buffer),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            redaction_processor,
            structlog.processors.JSONRenderer(),
        ],
    )
    provider = EnvSecretsProvider({"REVOPS_SECRET_CRM_API_KEY": "crm-live-9f8e7d6c5b4a"})
    key = provider.get("crm-api-key")
    log.bind(dest="crm").warning(
        "crm_call_failed", url=f"https://crm.example/api?k={key}", headers={"X-Api-Key": key}
    )
    try:
        raise ConnectionError(f"refused with {key}")
    except ConnectionError:
        log.exception("crm_call_crashed")
    output = buffer.getvalue()
    assert key not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["event"] for line in lines] == ["crm_call_failed", "crm_call_crashed"]
    assert lines[0]["dest"] == "crm" and lines[0]["headers"]["X-Api-Key"] == REDACTED
    assert "ConnectionError" in lines[1]["exception"]


def test_dlq_headers_lose_the_envelope_token() -> None:
    headers = {"revops-auth": "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln", "content-type": "json"}
    assert redact_value(headers) == {"revops-auth": REDACTED, "content-type": "json"}
