"""A local HTTP sink for the laptop stack: answers 200 to any request and logs it as JSON.

It stands in for Slack, CRM and ticketing endpoints in `docker-compose.yml`, so deliveries
can be watched with `docker compose logs -f http-sink`. Standard library only: it runs in
the plain Python base image.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RecordingHandler(BaseHTTPRequestHandler):
    """Logs method, path, headers and body of each request on stdout, one JSON line each."""

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
        line = {
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers),
            "body": body,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        payload = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = _record

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default access log: `_record` already wrote the request."""


def main() -> None:
    host = os.environ.get("SINK_HOST", "0.0.0.0")
    port = int(os.environ.get("SINK_PORT", "8080"))
    ThreadingHTTPServer((host, port), RecordingHandler).serve_forever()


if __name__ == "__main__":
    main()
