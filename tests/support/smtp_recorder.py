"""A real SMTP server on loopback (aiosmtpd, in its own thread) that records messages.

with SmtpRecorder() as smtp:
    ... send to smtp.host:smtp.port ...
    [message] = smtp.wait_for(1)
    message["Subject"], message.get_body(("html",)).get_content()
    len(smtp.connections)   # client connections that sent a message (kept-alive ones reused)
"""

from __future__ import annotations

import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, recorder: SmtpRecorder) -> None:
        self._recorder = recorder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self._recorder._record(envelope.mail_from, list(envelope.rcpt_tos), message, session.peer)
        return "250 Message accepted for delivery"


class SmtpRecorder:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._lock = threading.Condition()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.connections: set[Any] = set()  # (host, port) of each client connection
        self._controller = Controller(_Handler(self), hostname=host, port=self.port)

    def _record(self, sender: str, recipients: list[str], message: EmailMessage, peer: Any) -> None:
        with self._lock:
            self.connections.add(peer)
            self.messages.append(message)
            self.envelopes.append((sender, recipients))
            self._lock.notify_all()

    def start(self) -> SmtpRecorder:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} message(s), got {len(self.messages)}")
                self._lock.wait(left)
            return list(self.messages)
