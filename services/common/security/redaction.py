"""Keep secrets out of log lines, error messages, metric labels and DLQ payloads.

Two nets, because neither alone is enough:
- known values: every value a `SecretsProvider` returns (and anything passed to
  `register_secret`) is replaced wherever it appears, even inside a longer string such as an
  exception message or a URL;
- shapes: values under sensitive keys (`password`, `token`, `authorization`, ...) and
  credential-looking fragments of text (`Bearer ...`, `password=...`, JWTs, PEM private keys,
  URL user-info) are replaced even when nobody registered them.

`redaction_processor` is the structlog processor; put it after `format_exc_info` (so rendered
tracebacks are redacted too) and before the renderer. `redact_text` is for error messages and
DLQ fields; `redact_value` for any JSON-like structure.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[REDACTED]"

# Shorter values would redact ordinary words everywhere; real secrets are longer than this.
MIN_SECRET_LENGTH = 4

_SENSITIVE_WORDS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "authorization",
    "auth",
    "api_key",
    "apikey",
    "private_key",
    "signature",
    "credential",
    "credentials",
    "cookie",
    "session",
    "access_key",
    "secret_access_key",
    "client_secret",
    "revops_auth",
)
# A key is sensitive when it is one of the words or ends with one as a `_`-separated segment
# (`slack_token`, `x_api_key`), but not when a word is merely a prefix (`max_tokens`,
# `token_count`) or the key is an ordinary `*_key` (`idempotency_key`, `partition_key`).
_SENSITIVE_KEY_RE = re.compile(
    r"(?:^|_)(?:" + "|".join(re.escape(w) for w in _SENSITIVE_WORDS) + r")$"
)

_KEYWORDS_IN_TEXT = (
    r"password|passwd|pwd|secret|client_secret|token|access_token|refresh_token|api[_-]?key"
    r"|private[_-]?key|signature|authorization|aws_secret_access_key|x-revops-signature"
)
_ALREADY = r"(?!" + re.escape(REDACTED) + r")"
_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys (any algorithm), also when newlines were escaped into `\n`.
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
        ),
        REDACTED,
    ),
    # JWTs (our envelope tokens are bearer credentials while they live).
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # `password=xyz`, `"token": "xyz"`, `api-key: xyz`, `?token=xyz&`, `Authorization: Bearer x`.
    (
        re.compile(
            r"""(?P<k>["']?\b(?:"""
            + _KEYWORDS_IN_TEXT
            + r""")\b["']?\s*[:=]\s*)(?P<q>["']?)(?>(?:(?:Bearer|Basic|Token)\s+)?)"""
            + _ALREADY
            + r"""[^\s"'&,;}\]]+""",
            re.IGNORECASE,
        ),
        r"\g<k>\g<q>" + REDACTED,
    ),
    # `Bearer xyz`, `Basic xyz` anywhere else.
    (
        re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE),
        r"\1 " + REDACTED,
    ),
    # User-info in URLs: scheme://user:password@host.
    (
        re.compile(r"(?P<s>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@", re.IGNORECASE),
        r"\g<s>" + REDACTED + "@",
    ),
    # AWS access key ids.
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
)


class _SecretRegistry:
    """Known secret values, matched by one compiled alternation (longest first)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH:
            return
        # The JSON-escaped form too: a multi-line secret inside a repr or JSON text.
        variants = {value, json.dumps(value)[1:-1], value.strip()}
        new = {v for v in variants if len(v) >= MIN_SECRET_LENGTH} - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(REDACTED, text) if pattern is not None else text


_registry = _SecretRegistry()


def register_secret(value: str | bytes | None) -> None:
    """Remember a secret value so it is redacted wherever it later appears."""
    if value is None:
        return
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return  # binary secrets cannot appear verbatim in text output
    _registry.add(value)


def clear_registered_secrets() -> None:
    """Forget every registered value (tests only)."""
    _registry.clear()


def is_sensitive_key(key: str) -> bool:
    return bool(_SENSITIVE_KEY_RE.search(key.lower().replace("-", "_")))


def redact_text(text: str) -> str:
    """Return `text` with known secret values and credential-shaped fragments replaced."""
    text = _registry.redact(text)
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """Redact a JSON-like structure: sensitive keys at any depth, secrets inside strings."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {k: _redact_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", errors="replace"))
    # Anything else (exceptions, models, datetimes) would be rendered through str()/repr():
    # keep it as is unless its text form carries a secret.
    text = str(value)
    redacted = redact_text(text)
    return value if redacted == text else redacted


def _redact_item(key: Any, value: Any) -> Any:
    if isinstance(key, str) and is_sensitive_key(key) and value not in (None, ""):
        return REDACTED
    return redact_value(value)


def redaction_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact the whole event dict (keys at any depth, text anywhere)."""
    for key in list(event_dict):
        event_dict[key] = _redact_item(key, event_dict[key])
    return event_dict
