"""The per-service HTTP endpoints: /metrics (Prometheus), /healthz (alive), /readyz (ready)."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Awaitable, Callable

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.errors import ConfigurationError
from services.common.ports import port_owner

ReadyCheck = Callable[[], Awaitable[bool]]


def build_app(
    service: str, ready: ReadyCheck, extra_routes: list[Route] | None = None
) -> Starlette:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # The pid lets a supervisor (`revops run`) tell its own child from another process that
    # answers on the same port.
    async def healthz(_: Request) -> Response:
        return JSONResponse({"service": service, "status": "alive", "pid": os.getpid()})

    async def readyz(_: Request) -> Response:
        ok = await ready()
        return JSONResponse(
            {"service": service, "status": "ready" if ok else "not_ready", "pid": os.getpid()},
            status_code=200 if ok else 503,
        )

    routes = [
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        *(extra_routes or []),
    ]
    return Starlette(routes=routes)


class HttpServer:
    """uvicorn inside the service's own event loop (no extra thread or process)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            owner = port_owner(port) if exc.errno == errno.EADDRINUSE else None
            held = f"is taken by {owner}" if owner else f"cannot be used ({exc.strerror})"
            raise ConfigurationError(
                f"HTTP port {port} on {host} {held}: stop it, or give this service another "
                "port with REVOPS_HTTP_PORT"
            ) from None
        self.port = self._sock.getsockname()[1]
        # log_config=None: uvicorn's records go through the service's JSON logging.
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, log_config=None
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task:
            await self._task
