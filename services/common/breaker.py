"""An asyncio-safe circuit breaker on top of pybreaker's state machine.

pybreaker's own `call_async` needs Tornado, and its `call` runs a *sync* function, so it
cannot time an awaited call. We keep pybreaker as the single source of truth for the state
(closed -> open -> half-open -> closed, counters, reset timeout) and drive it around the
await: `before_call` gates (raises while open, moves to half-open after the timeout), and the
outcome of the awaited call is reported with the state's own success/error handlers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import pybreaker

from services.common import metrics

P = ParamSpec("P")
T = TypeVar("T")

STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}


class CircuitOpenError(Exception):
    """The breaker is open: the call was not attempted."""

    def __init__(self, name: str) -> None:
        super().__init__(f"circuit breaker '{name}' is open; call not attempted")
        self.breaker_name = name


class _StateMetric(pybreaker.CircuitBreakerListener):
    def __init__(self, name: str) -> None:
        self._name = name

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        metrics.set_breaker_state(self._name, STATE_VALUES.get(new_state.name, 0))


class AsyncCircuitBreaker:
    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        success_threshold: int = 3,
        timeout_s: float = 60.0,
        exclude: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.name = name
        self._lock = threading.RLock()  # pybreaker's own lock is per call; ours spans gate+report
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=failure_threshold,
            reset_timeout=timeout_s,
            success_threshold=success_threshold,
            exclude=list(exclude),
            listeners=[_StateMetric(name)],
            name=name,
        )
        metrics.set_breaker_state(name, 0)

    @property
    def state(self) -> str:
        """closed | open | half_open (reading it never changes it)."""
        return str(self._breaker.current_state).replace("-", "_")

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            # pybreaker's open state would run `fn` itself once the timeout has passed (a sync
            # call that cannot await), so the open -> half-open gate is decided here, from
            # pybreaker's own opened_at and reset_timeout.
            if self._breaker.current_state == pybreaker.STATE_OPEN:
                opened_at = self._breaker._state_storage.opened_at
                timeout = timedelta(seconds=self._breaker.reset_timeout)
                if opened_at is not None and datetime.now(UTC) < opened_at + timeout:
                    raise CircuitOpenError(self.name)
                self._breaker.half_open()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._report_failure(exc)
            raise
        self._report_success()
        return result

    def _report_success(self) -> None:
        with self._lock:
            state: Any = self._breaker.state
            state._handle_success()

    def _report_failure(self, exc: BaseException) -> None:
        with self._lock:
            state: Any = self._breaker.state
            # When the failure trips the breaker pybreaker raises its own error; the caller
            # still sees the original exception.
            with contextlib.suppress(pybreaker.CircuitBreakerError):
                state._handle_error(exc, reraise=False)
