"""structlog set-up: JSON lines carrying the message's ids on every line.

The runtime binds request_id, flow_id, correlation_id and message_id with
`structlog.contextvars` around each record, so every log line a handler writes has them.

Libraries (aiokafka, faststream, uvicorn) log through the standard `logging` module; their
records are rendered by the same processors, so a service's stderr is one JSON line per
event whoever wrote it. During a broker outage aiokafka repeats the same error many times a
second: `RepeatFilter` lets one line per message template through each interval and counts
the rest (`repeats` on the next line written).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

_extra_processors: list[Any] = []

# Library loggers quieter than the service's own level (their INFO is connection chatter).
LIBRARY_LEVEL = logging.WARNING
REPEAT_INTERVAL_S = 30.0


def add_processor(processor: Any) -> None:
    """Insert a processor (e.g. secret redaction) before rendering; call before configure()."""
    _extra_processors.append(processor)


class RepeatFilter(logging.Filter):
    """One record per (logger, level, message template) per interval; the next one let
    through carries how many were dropped since (`repeats`)."""

    def __init__(
        self, interval_s: float = REPEAT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()  # library threads (e.g. uvicorn's) log too
        self._last: dict[tuple[str, int, str], float] = {}
        self._dropped: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval_s:
                self._dropped[key] = self._dropped.get(key, 0) + 1
                return False
            self._last[key] = now
            dropped = self._dropped.pop(key, 0)
        if dropped:
            record.repeats = dropped
            record.repeat_interval_s = self._interval_s
        return True


class _CurrentStderr:
    """`sys.stderr` as it is when a line is written: a CLI test runner swaps (and closes)
    it, and a logger bound to the old one would fail on every later line."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _renderer(fmt: str) -> Any:
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


def configure(
    service: str,
    level: str = "INFO",
    fmt: str = "json",
    *,
    repeat_interval_s: float = REPEAT_INTERVAL_S,
    library_level: int = LIBRARY_LEVEL,
    stream: Any = None,
) -> None:
    stream = stream or _CurrentStderr()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            *_extra_processors,
            _renderer(fmt),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    _route_standard_logging(fmt, shared, stream, repeat_interval_s, library_level)


def _route_standard_logging(
    fmt: str, shared: list[Any], stream: Any, repeat_interval_s: float, library_level: int
) -> None:
    """The root logger writes through structlog's processors (one handler, replacing any
    earlier one, e.g. logging.basicConfig's plain `ERROR:aiokafka:...` lines)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(allow=["repeats", "repeat_interval_s"]),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                *_extra_processors,
                _renderer(fmt),
            ],
        )
    )
    handler.addFilter(RepeatFilter(repeat_interval_s))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(library_level)
    # uvicorn configures its own handlers unless told not to (health.py passes
    # log_config=None); make sure its records reach the root handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
        library.setLevel(library_level)


def configure_cli(*, watching: bool = False) -> None:
    """A `revops` command that talks to Kafka: warnings only, readable on a terminal. A short
    command says itself when Kafka is unreachable, so library errors are not shown; a command
    that keeps watching (`revops run`) shows them, one line per interval with a count."""
    configure(
        "cli", "WARNING", "console", library_level=LIBRARY_LEVEL if watching else logging.CRITICAL
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
