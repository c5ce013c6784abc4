"""How `revops run` and `revops demo` end on SIGTERM, SIGINT or SIGHUP.

Every stop signal ends the command as Ctrl-C does: the CLI's `finally` stops every service
(`LocalStack.stop`) before the process exits. Two rules make that hold wherever the signal
lands:

- While an event loop runs (start-up checks, the demo flows, the watch), the signal cancels
  the running coroutine at its next `await`, so the Kafka clients close through their own
  shutdown path. A KeyboardInterrupt raised between two bytecodes of the loop or of aiokafka
  could leave a response future that nobody resolves, and asyncio.run's clean-up would then
  wait for it forever.
- Whatever still hangs, the services are stopped and the process exits `grace_s` seconds
  after the first signal (a watchdog thread), so a stop signal always stops the stack.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

import typer

from services.common.serve import STOP_SIGNALS

T = TypeVar("T")

# Longer than LocalStack.stop needs at worst (20 s for the children, then SIGKILL), so the
# normal path always wins when nothing hangs.
STOP_GRACE_S = 45.0


class StopSignals:
    """Install with `install()`, then run each async step with `run(coro)`."""

    def __init__(self, stop_stack: Callable[[], None], grace_s: float = STOP_GRACE_S) -> None:
        self._stop_stack = stop_stack  # LocalStack.stop, called by the watchdog
        self.grace_s = grace_s
        self.received: signal.Signals | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        """Outside an event loop a stop signal raises KeyboardInterrupt where the main
        thread is (e.g. seeding the warehouse)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._interrupt)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """asyncio.run(coro), cancelled by a stop signal; raises KeyboardInterrupt then."""
        return asyncio.run(self._cancellable(coro))

    async def _cancellable(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._cancel, sig, task)
        try:
            result = await coro
        except asyncio.CancelledError:
            if self.received is None:
                raise
            raise KeyboardInterrupt(self.received.name) from None
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)  # restores SIG_DFL ...
            self.install()  # ... so put this class's handler back
        if self.received is not None:  # the coroutine swallowed the cancellation
            raise KeyboardInterrupt(self.received.name)
        return result

    def _cancel(self, sig: signal.Signals, task: asyncio.Task[Any]) -> None:
        self._note(sig)
        task.cancel()

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        self._note(signal.Signals(signum))
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def _note(self, sig: signal.Signals) -> None:
        with self._lock:
            if self.received is not None:
                return
            self.received = sig
        watchdog = threading.Timer(self.grace_s, self._force_stop)
        watchdog.daemon = True
        watchdog.start()

    def _force_stop(self) -> None:
        received = self.received or signal.SIGTERM
        typer.echo(
            f"still not stopped {self.grace_s:.0f} s after {received.name}; "
            "stopping the services and exiting now",
            err=True,
        )
        try:
            self._stop_stack()
        finally:
            os._exit(128 + int(received))
