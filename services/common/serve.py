"""Running one service process until SIGTERM/SIGINT (what `revops serve NAME` and
`python -m services.<name>` call)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable

import structlog

from services.common import logging as service_logging
from services.common.runtime import ServiceRuntime
from services.common.security import redaction_processor
from services.common.settings import Settings, get_settings

DEFAULT_PORTS = {
    "data_agent": 9101,
    "decision_agent": 9102,
    "execution_agent": 9103,
    "webhook_processor": 9104,
    "ingress": 8080,
    "console": 8090,
}

Builder = Callable[[Settings, int | None], Awaitable[ServiceRuntime]]


def http_port_for(name: str) -> int:
    return int(os.environ.get("REVOPS_HTTP_PORT", DEFAULT_PORTS.get(name, 0)))


async def serve(name: str, build: Builder, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    service_logging.add_processor(redaction_processor)
    service_logging.configure(name, settings.log_level, settings.log_format)
    runtime = await build(settings, http_port_for(name))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        _exit_if_stuck(EXIT_GRACE_S)


EXIT_GRACE_S = 10.0


def _exit_if_stuck(grace_s: float) -> None:
    """Offsets are committed and the broker closed at this point; a worker thread still
    blocked in a library call must not keep the process (or its pod) alive forever."""

    def watchdog() -> None:
        time.sleep(grace_s)
        structlog.get_logger("serve").warning("forced_exit_after_stop", grace_s=grace_s)
        os._exit(0)

    threading.Thread(target=watchdog, name="exit-watchdog", daemon=True).start()


def main(name: str, build: Builder) -> None:
    asyncio.run(serve(name, build))
