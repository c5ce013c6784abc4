"""A real HTTP server on loopback that records every request and misbehaves on demand.

It runs in its own threads (stdlib ThreadingHTTPServer), so it works the same from sync and
async tests and a stalled request never blocks the event loop under test.

    with HttpRecorder() as sink:
        sink.fail("/hook", status=500, times=5)       # next 5 requests to /hook get 500
        sink.rate_limit("/hook", retry_after=1)        # then one 429 with Retry-After: 1
        sink.stall("/slow", seconds=2)                 # next request waits 2 s, then 200
        sink.respond("/api", status=200, json={"ok": True})   # default answer for a path
        ... sink.url("/hook") ...
        requests = sink.wait_for(3, path="/hook")      # or: await sink.wait_for_async(...)
        requests[0].json(), requests[0].headers["Idempotency-Key"]
        sink.connections                               # TCP connections accepted so far
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Message  # case-insensitive look-up: headers["idempotency-key"]
    body: bytes
    received_at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class _Behaviour:
    status: int = 200
    body: bytes = b'{"ok":true}'
    headers: dict[str, str] = field(default_factory=dict)
    stall_s: float = 0.0
    times: int = 1


def _json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


class _CountingServer(ThreadingHTTPServer):
    """Counts the TCP connections it accepts (keep-alive clients reuse theirs)."""

    accepted = 0

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.accepted += 1  # one thread accepts; the handler threads never touch it
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a test's timeout against `stall`) is not a server error:
        # socketserver would print a traceback to stderr, outside any test's capture.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HttpRecorder:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._scripted: dict[str, deque[_Behaviour]] = {}
        self._defaults: dict[str, _Behaviour] = {}
        self._closing = threading.Event()
        self._server = _CountingServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> HttpRecorder:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HttpRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._server.accepted

    # --- scripting --------------------------------------------------------------------------

    def _script(self, path: str, behaviour: _Behaviour) -> None:
        with self._lock:
            self._scripted.setdefault(path, deque()).append(behaviour)

    def fail(
        self,
        path: str,
        status: int = 500,
        times: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` requests to `path` are answered with `status`."""
        payload = _json_body(body if body is not None else {"error": f"scripted {status}"})
        self._script(path, _Behaviour(status, payload, dict(headers or {}), times=times))

    def rate_limit(self, path: str, retry_after: float | str = 1, times: int = 1) -> None:
        """The next `times` requests get 429 with `Retry-After: <retry_after>`."""
        value = str(int(retry_after)) if isinstance(retry_after, int | float) else retry_after
        self._script(
            path, _Behaviour(429, b'{"error":"rate_limited"}', {"Retry-After": value}, times=times)
        )

    def stall(self, path: str, seconds: float, times: int = 1, status: int = 200) -> None:
        """The next `times` requests wait `seconds` before answering `status`."""
        self._script(path, _Behaviour(status, b'{"ok":true}', {}, stall_s=seconds, times=times))

    def respond(
        self,
        path: str,
        status: int = 200,
        json: Any = None,
        headers: dict[str, str] | None = None,
        text: str | None = None,
    ) -> None:
        """Default answer for `path` once scripted behaviours are used up: `json` encoded,
        or `text` as it is (e.g. a Prometheus exposition)."""
        body = (
            text.encode()
            if text is not None
            else _json_body(json if json is not None else {"ok": True})
        )
        with self._lock:
            self._defaults[path] = _Behaviour(status, body, dict(headers or {}))

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._scripted.clear()
            self._defaults.clear()

    def _next_behaviour(self, path: str) -> _Behaviour:
        with self._lock:
            queue = self._scripted.get(path)
            if queue:
                behaviour = queue[0]
                behaviour.times -= 1
                if behaviour.times <= 0:
                    queue.popleft()
                return behaviour
            return self._defaults.get(path, _Behaviour())

    # --- reading ----------------------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = 10.0
    ) -> list[RecordedRequest]:
        """Block until at least `count` requests (to `path`) arrived; raise on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [r for r in self._requests if path is None or r.path == path]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"expected {count} request(s) to {path or 'any path'}, got {len(found)}"
                    )
                self._lock.wait(left)

    async def wait_for_async(
        self, count: int, path: str | None = None, wait_s: float = 10.0
    ) -> list[RecordedRequest]:
        return await asyncio.to_thread(self.wait_for, count, path, wait_s)

    # --- server -----------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorder._record(
                    RecordedRequest(
                        self.command, parts.path, parts.query, self.headers, body, time.monotonic()
                    )
                )
                behaviour = recorder._next_behaviour(parts.path)
                if behaviour.stall_s:
                    recorder._closing.wait(behaviour.stall_s)
                # A 204 or 304 has no body (RFC 9110): bytes after it would be read as the
                # next answer on the kept connection.
                answer = b"" if behaviour.status in (204, 304) else behaviour.body
                try:
                    self.send_response(behaviour.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    for name, value in behaviour.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # client gave up (timeout); nothing to answer
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        return Handler
