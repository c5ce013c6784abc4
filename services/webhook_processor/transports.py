"""Sending a built request: HTTP (aiohttp), SMTP (stdlib smtplib in a worker thread), or the
demo outbox file. Each classifies failures: permanent (dead-letter now) or retryable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import smtplib
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver

from services.common.security.redaction import redact_text, redact_value
from services.webhook_processor.egress import EgressPolicy, EgressResolver, dns_failed
from services.webhook_processor.rendering import PermanentDeliveryError
from services.webhook_processor.specs import (
    DeliverySpec,
    EmailSpec,
    HttpRequestSpec,
    RetryableDeliveryError,
    SendOutcome,
)

RETRYABLE_STATUS = frozenset({408, 429})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class _Answer:
    """A destination's answer, read whole while its connection was held."""

    status: int
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDictProxy)
    body: bytes
    charset: str | None

    @property
    def text(self) -> str:
        return self.body.decode(self.charset or "utf-8", errors="replace")


def _excerpt(answer: _Answer, limit: int) -> str:
    """The start of an answer, for an error message. Redacted before it is cut, so a
    credential the destination echoes is replaced whole, never left half-visible."""
    return redact_text(answer.text[: limit * 8])[:limit]


def _response_dict(answer: _Answer) -> dict[str, Any]:
    """The answer as the action result records it (it travels on Kafka and into the store),
    with any credential the destination echoed redacted."""
    try:
        body = json.loads(answer.body)
    except ValueError:
        text = _excerpt(answer, 500)
        return {"body": text} if text else {}
    redacted = redact_value(body)
    return redacted if isinstance(redacted, dict) else {"body": redacted}


def new_http_client(
    max_connections: int = 100, resolver: AbstractResolver | None = None
) -> aiohttp.ClientSession:
    """Redirects off (each request asks for none: the checked URL is the called URL), TLS
    verified against certifi's roots, timeouts always. Every connection it opens is kept
    alive for the next request (up to `max_connections`). Proxies: `EnvironmentProxies`.

    aiohttp rather than httpx: in a bare loop a request over a kept connection costs ~0.1 ms
    of CPU against ~0.5 ms through httpx's layers (httpcore, h11, anyio); in the delivery
    engine (`bench/bench_deliveries.py`) ~0.48 ms per delivery, everything included, against
    ~1.04 with httpx. Make it inside the running event loop."""
    tls = ssl.create_default_context(cafile=certifi.where())
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, ssl=tls, resolver=resolver),
        timeout=aiohttp.ClientTimeout(total=10.0),
        # Not trust_env: with it aiohttp looks up ~/.netrc and the proxy variables in a
        # worker thread for every request (two thread hand-overs per delivery, ~0.2 ms of
        # CPU); the proxies are read once instead (EnvironmentProxies), and a host's netrc
        # never adds credentials to a webhook (they come from webhooks.yaml only).
        trust_env=False,
        # A body is sent as the template rendered it, with the Content-Type its spec names
        # or none (aiohttp would otherwise label raw bytes application/octet-stream).
        skip_auto_headers=("Content-Type",),
    )


# NO_PROXY matching as urllib does it (typeshed lists the function only per platform).
_no_proxy_names: Callable[[str, Mapping[str, str]], bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EnvironmentProxies:
    """HTTP_PROXY / HTTPS_PROXY / NO_PROXY (any case) as the process started with them: a
    destination's requests go through its scheme's proxy unless NO_PROXY names its host."""

    proxies: Mapping[str, str]

    @classmethod
    def from_environment(cls) -> EnvironmentProxies:
        return cls(urllib.request.getproxies_environment())

    def for_url(self, url: str) -> str | None:
        """The proxy for `url`, or None to go direct. Credentials in the proxy's URL stay in
        it: aiohttp sends them to the proxy (Proxy-Authorization), never to the destination."""
        parts = urlsplit(url)
        proxy = self.proxies.get(parts.scheme)
        if not proxy or not parts.hostname:
            return None
        if _no_proxy_names(parts.hostname, self.proxies):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"


class HttpTransport:
    """One destination's HTTP client: its keep-alive pool (`max_connections`, one per lane)
    and the egress check of every request. A request that goes direct connects only to
    addresses the egress policy allows (`EgressResolver` resolves for the pool); one through
    a proxy, which resolves the name itself, is checked by resolving the name here first
    (the proxy's own address is the operator's choice and is not checked). Open it inside
    the running event loop; `close` (or `async with`) closes its connections."""

    def __init__(
        self,
        egress: EgressPolicy,
        proxies: EnvironmentProxies | None = None,
        *,
        max_connections: int = 100,
    ) -> None:
        self._egress = egress
        self._proxies = proxies or EnvironmentProxies.from_environment()
        self._direct = new_http_client(max_connections, EgressResolver(egress))
        self._proxied: aiohttp.ClientSession | None = None  # made for the first proxied request
        self._max_connections = max_connections

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._direct.close()
        if self._proxied is not None:
            await self._proxied.close()

    async def send(self, spec: HttpRequestSpec, timeout_s: float) -> SendOutcome:
        proxy = self._proxies.for_url(spec.url)
        if proxy is None:
            self._egress.check_without_resolving(spec.url)
        else:
            await self._egress.check(spec.url)
        answer = await self._request(spec, timeout_s, proxy)
        code = answer.status
        if code >= 500 or code in RETRYABLE_STATUS:
            raise RetryableDeliveryError(
                "rate_limited" if code == 429 else "destination_unavailable",
                f"HTTP {code}: {_excerpt(answer, 200)}",
                status_code=code,
                retry_after_s=parse_retry_after(answer.headers.get("Retry-After")),
            )
        if 300 <= code < 400:
            raise PermanentDeliveryError(
                "destination_redirected",
                f"HTTP {code} to {answer.headers.get('Location')!r}; redirects are not followed",
            )
        if code >= 400:
            raise PermanentDeliveryError(
                "destination_rejected", f"HTTP {code}: {_excerpt(answer, 300)}"
            )
        return SendOutcome(code, _response_dict(answer))

    def _client(self, proxy: str | None) -> aiohttp.ClientSession:
        if proxy is None:
            return self._direct
        if self._proxied is None:
            self._proxied = new_http_client(self._max_connections)
        return self._proxied

    async def _request(self, spec: HttpRequestSpec, timeout_s: float, proxy: str | None) -> _Answer:
        try:
            async with self._client(proxy).request(
                spec.method,
                spec.url,
                data=spec.body,
                headers=spec.headers,
                proxy=proxy,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                return _Answer(
                    response.status, response.headers, await response.read(), response.charset
                )
        except TimeoutError as exc:  # before ClientError: aiohttp's timeouts are both
            raise RetryableDeliveryError("timeout", f"no answer within {timeout_s}s") from exc
        except aiohttp.ClientConnectorDNSError as exc:
            if proxy is None:  # the destination's name: as when the check resolved it itself
                raise dns_failed(exc.host, exc.os_error) from exc
            raise _connection_error(exc) from exc  # the proxy's name: an outage
        except aiohttp.ClientError as exc:
            raise _connection_error(exc) from exc


def _connection_error(exc: aiohttp.ClientError) -> RetryableDeliveryError:
    return RetryableDeliveryError("connection_error", redact_text(f"{type(exc).__name__}: {exc}"))


# An SMTP connection left idle this long is closed rather than reused (servers drop idle
# clients after a few minutes; RFC 5321 asks them to wait at least 5).
SMTP_IDLE_S = 30.0

_ServerKey = tuple[str, int, bool, bool, str | None]


class SmtpTransport:
    """Keeps each server's connections open between messages (logged in, TLS set up), so a
    burst of e-mails costs one connection per lane instead of one per message. A kept
    connection is checked with NOOP before it is reused, never by resending a message."""

    def __init__(self, egress: EgressPolicy) -> None:
        self._egress = egress
        self._idle: dict[_ServerKey, list[tuple[smtplib.SMTP, float]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _connect(spec: EmailSpec, timeout_s: float) -> smtplib.SMTP:
        context = ssl.create_default_context()
        smtp_cls = smtplib.SMTP_SSL if spec.ssl else smtplib.SMTP
        kwargs: dict[str, Any] = {"timeout": timeout_s}
        if spec.ssl:
            kwargs["context"] = context
        client = smtp_cls(spec.host, spec.port, **kwargs)
        try:
            if spec.starttls and not spec.ssl:
                client.starttls(context=context)
            if spec.username:
                client.login(spec.username, spec.password or "")
        except BaseException:
            _close(client)
            raise
        return client

    def _kept(self, key: _ServerKey) -> smtplib.SMTP | None:
        """A kept connection to `key` that still answers, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                client, since = idle.pop()
            if time.monotonic() - since < SMTP_IDLE_S:
                try:
                    if client.noop()[0] == 250:
                        return client
                except (OSError, smtplib.SMTPException):
                    pass
            _close(client)

    def _keep(self, key: _ServerKey, client: smtplib.SMTP) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append((client, time.monotonic()))

    def _send_blocking(self, spec: EmailSpec, timeout_s: float) -> None:
        key = (spec.host, spec.port, spec.ssl, spec.starttls, spec.username)
        client = self._kept(key) or self._connect(spec, timeout_s)
        try:
            client.send_message(spec.message, from_addr=spec.sender, to_addrs=spec.recipients)
        except BaseException:
            _close(client)  # its state after a refusal is unknown: the next message starts anew
            raise
        self._keep(key, client)

    def close(self) -> None:
        """Close every kept connection (the engine stops)."""
        with self._lock:
            kept = [client for idle in self._idle.values() for client, _ in idle]
            self._idle.clear()
        for client in kept:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.quit()
            _close(client)

    async def send(self, spec: EmailSpec, timeout_s: float) -> SendOutcome:
        await self._egress.check(spec.url)
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._send_blocking, spec, timeout_s), timeout_s * 3
            )
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError("smtp_rejected", f"recipients refused: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            detail = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentDeliveryError("smtp_rejected", detail) from exc
            raise RetryableDeliveryError("smtp_unavailable", detail, exc.smtp_code) from exc
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            raise RetryableDeliveryError(
                "connection_error", redact_text(f"{type(exc).__name__}: {exc}")
            ) from exc
        return SendOutcome(
            250, {"message_id": str(spec.message["Message-ID"]), "recipients": spec.recipients}
        )


def _close(client: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        client.close()


class OutboxFileTransport:
    """Appends the exact request that would have been sent to a JSONL file."""

    def __init__(self, path: Path, destination: str) -> None:
        self._path = path
        self._destination = destination
        self._lock = threading.Lock()

    def _append(self, line: str) -> None:
        with self._lock:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    async def send(self, spec: DeliverySpec, idempotency_key: str) -> SendOutcome:
        record = {
            "destination": self._destination,
            "idempotency_key": idempotency_key,
            "written_at": datetime.now(UTC).isoformat(),
            "request": spec.to_record(),
        }
        await asyncio.to_thread(self._append, json.dumps(record, ensure_ascii=False))
        return SendOutcome(None, {"outbox_file": str(self._path)})
