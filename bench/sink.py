"""A loopback HTTP sink that stands in for every webhook destination in the bench and the
chaos runs, in its own process (so it never competes with the harness for the GIL).

It behaves like an idempotent API (Stripe-style): the first successful answer for an
`Idempotency-Key` is remembered and a repeat of that key gets the same answer again. It
counts both: `delivered` (distinct keys answered 2xx, the effects) and `raw_duplicates`
(2xx answers to a key already answered, what a non-idempotent API would have done twice).

Each path prefix can be switched at run time, for fault injection:
  ok   - answer 200 (the default)
  fail - answer 500
  hang - hold the request until the mode changes (the client times out)

    python -m bench.sink --port 0 --port-file /tmp/port
    POST /_control {"prefix": "/crm", "mode": "fail"}
    GET  /_stats   -> {"requests": N, "answers": [[path, key, status, t], ...], ...}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

OK_BODY = b'{"ok":true,"id":"sink"}'
MODES = ("ok", "fail", "hang")
HANG_LIMIT_S = 600.0  # a hung request is released after this, whatever the mode


@dataclass
class SinkState:
    modes: dict[str, str] = field(default_factory=dict)
    answered: dict[str, bytes] = field(default_factory=dict)  # key -> first 2xx body
    # (path, key, status, monotonic time) of every answer, in order; status 0 = hung up.
    log: list[tuple[str, str, int, float]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def mode_for(self, path: str) -> str:
        best = ""
        for prefix in self.modes:
            if path.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        return self.modes.get(best, "ok") if best else "ok"


def build_app(state: SinkState) -> Starlette:
    async def control(request: Request) -> Response:
        body = orjson.loads(await request.body())
        mode = body["mode"]
        if mode not in MODES:
            return Response(b'{"error":"unknown mode"}', status_code=400)
        state.modes[body["prefix"]] = mode
        state.changed.set()
        state.changed = asyncio.Event()
        return Response(b'{"ok":true}', media_type="application/json")

    async def stats(request: Request) -> Response:
        return Response(
            orjson.dumps({"log": state.log, "modes": state.modes}),
            media_type="application/json",
        )

    async def deliver(request: Request) -> Response:
        path = request.url.path
        key = request.headers.get("idempotency-key", "")
        await request.body()
        deadline = time.monotonic() + HANG_LIMIT_S
        while (mode := state.mode_for(path)) == "hang" and time.monotonic() < deadline:
            waiter = state.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), 1.0)
            if await request.is_disconnected():
                state.log.append((path, key, 0, time.monotonic()))
                return Response(status_code=504)
        if mode == "fail":
            state.log.append((path, key, 500, time.monotonic()))
            return Response(b'{"error":"injected failure"}', status_code=500)
        body = state.answered.setdefault(key, OK_BODY) if key else OK_BODY
        state.log.append((path, key, 200, time.monotonic()))
        return Response(body, media_type="application/json")

    methods = ["POST", "PUT", "PATCH"]
    return Starlette(
        routes=[
            Route("/_control", control, methods=["POST"]),
            Route("/_stats", stats, methods=["GET"]),
            Route("/{path:path}", deliver, methods=methods),
        ]
    )


@dataclass(frozen=True)
class SinkAnswer:
    path: str
    key: str
    status: int
    at: float


@dataclass
class SinkStats:
    answers: list[SinkAnswer]

    def delivered(self) -> list[SinkAnswer]:
        return [a for a in self.answers if 200 <= a.status < 300]

    def delivered_counts(self) -> dict[str, int]:
        """Idempotency-Key -> how many 2xx answers it got (raw, duplicates included)."""
        counts: dict[str, int] = {}
        for a in self.delivered():
            counts[a.key] = counts.get(a.key, 0) + 1
        return counts

    def raw_duplicates(self) -> int:
        return sum(n - 1 for n in self.delivered_counts().values())

    def first_delivery_order(self) -> list[SinkAnswer]:
        seen: set[str] = set()
        order = []
        for a in self.delivered():
            if a.key not in seen:
                seen.add(a.key)
                order.append(a)
        return order


class SinkClient:
    """The harness's handle on a sink process."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def set_mode(self, prefix: str, mode: str) -> None:
        httpx.post(
            f"{self.base_url}/_control", json={"prefix": prefix, "mode": mode}
        ).raise_for_status()

    def stats(self) -> SinkStats:
        raw = httpx.get(f"{self.base_url}/_stats", timeout=30).json()
        return SinkStats([SinkAnswer(*row) for row in raw["log"]])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    port = args.port or free_port()
    config = uvicorn.Config(
        build_app(SinkState()),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        backlog=2048,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
