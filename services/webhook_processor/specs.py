"""What one delivery sends: an HTTP request or an e-mail, built before anything is sent so it
can be checked, logged, written to the demo outbox, or sent, all from the same value."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any


class RetryableDeliveryError(Exception):
    """A failure that may pass: timeout, connection error, 408, 429, 5xx."""

    def __init__(
        self,
        code: str,
        message: str,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status_code = status_code
        self.retry_after_s = retry_after_s


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class HttpRequestSpec:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def to_record(self) -> dict[str, Any]:
        try:
            body: Any = json.loads(self.body)
        except ValueError:
            body = self.body.decode(errors="replace")
        return {
            "kind": "http",
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "body": body,
        }


@dataclass(frozen=True)
class EmailSpec:
    host: str
    port: int
    starttls: bool
    ssl: bool
    username: str | None
    password: str | None
    sender: str
    recipients: list[str]
    message: EmailMessage = field(compare=False)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def to_record(self) -> dict[str, Any]:
        text = self.message.get_body(("plain",))
        html = self.message.get_body(("html",))
        return {
            "kind": "smtp",
            "url": self.url,
            "from": self.sender,
            "to": self.recipients,
            "headers": {k: str(v) for k, v in self.message.items()},
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }


DeliverySpec = HttpRequestSpec | EmailSpec


@dataclass(frozen=True)
class SendOutcome:
    """A successful send: the code and what the far side answered (for the ActionResult)."""

    status_code: int | None
    response: dict[str, Any] = field(default_factory=dict)
