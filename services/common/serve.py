"""Running one service process until SIGTERM, SIGINT or SIGHUP (what `revops serve NAME`
and `python -m services.<name>` call)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable

import structlog

from services.common import logging as service_logging
from services.common import metrics
from services.common.errors import ConfigurationError
from services.common.gc_tuning import freeze_start_up, thaw
from services.common.processes import DEFAULT_PORTS, parent_gone, parent_pid
from services.common.runtime import ServiceRuntime
from services.common.security import redaction_processor
from services.common.settings import Settings, get_settings
from services.common.stores.migrations import MigrationError

Builder = Callable[[Settings, int | None], Awaitable[ServiceRuntime]]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def http_port_for(name: str) -> int:
    return int(os.environ.get("REVOPS_HTTP_PORT", DEFAULT_PORTS.get(name, 0)))


async def serve(name: str, build: Builder, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    service_logging.add_processor(redaction_processor)
    service_logging.configure(name, settings.log_level, settings.log_format)
    metrics.configure(name)
    runtime = await build(settings, http_port_for(name))
    freeze_start_up()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    watcher = _watch_parent(stop)
    try:
        await runtime.start()
        try:
            await stop.wait()
        finally:
            await runtime.stop()
            _exit_if_stuck(EXIT_GRACE_S)
    finally:
        if watcher is not None:
            watcher.cancel()
        thaw()  # also after a start that failed


PARENT_CHECK_S = 1.0


def _watch_parent(stop: asyncio.Event) -> asyncio.Task[None] | None:
    parent = parent_pid()
    if parent is None:
        return None

    async def watch() -> None:
        while True:
            if parent_gone(parent):
                structlog.get_logger("serve").warning("parent_gone", parent_pid=parent)
                stop.set()
                return
            await asyncio.sleep(PARENT_CHECK_S)

    return asyncio.create_task(watch(), name="parent-watch")


EXIT_GRACE_S = 10.0


def _exit_if_stuck(grace_s: float) -> None:
    """Offsets are committed and the broker closed at this point; a worker thread still
    blocked in a library call must not keep the process (or its pod) alive forever."""

    def watchdog() -> None:
        time.sleep(grace_s)
        structlog.get_logger("serve").warning("forced_exit_after_stop", grace_s=grace_s)
        os._exit(0)

    threading.Thread(target=watchdog, name="exit-watchdog", daemon=True).start()


# glibc's M_ARENA_MAX: the partitions of a batch are handled on worker threads, and glibc
# gives each thread its own malloc arena that keeps freed memory; two arenas bound the RSS.
M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> None:
    """Cap glibc's per-thread malloc arenas (no-op elsewhere, or when MALLOC_ARENA_MAX is
    set in the environment: the operator's choice wins)."""
    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl): nothing to cap
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def main(name: str, build: Builder) -> None:
    """Serve until stopped; a configuration the service cannot start with (or a schema it
    cannot migrate) is one line on stderr and exit status 2, not a traceback."""
    limit_malloc_arenas()
    try:
        asyncio.run(serve(name, build))
    except (ConfigurationError, MigrationError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
