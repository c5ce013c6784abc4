"""Library logs go through structlog as JSON, and an error repeated many times a second (a
broker outage) gives one line per interval with a count."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from services.common import logging as service_logging
from services.common.logging import RepeatFilter


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_library_records_are_json_lines_with_the_service(restore_logging: None) -> None:
    out = io.StringIO()
    service_logging.configure("data_agent", "INFO", "json", stream=out)
    logging.getLogger("aiokafka.conn").error("Unable connect to %s: %s", "127.0.0.1:1", "refused")
    logging.getLogger("uvicorn.error").warning("port in use")
    structlog.get_logger("runtime").warning("dead_lettered", code="INVALID_JSON")
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "Unable connect to 127.0.0.1:1: refused",
        "port in use",
        "dead_lettered",
    ]
    assert lines[0]["logger"] == "aiokafka.conn" and lines[0]["level"] == "error"
    assert all(line["service"] == "data_agent" and "timestamp" in line for line in lines)


def test_a_thousand_identical_library_errors_are_one_line(restore_logging: None) -> None:
    out = io.StringIO()
    service_logging.configure("data_agent", "INFO", "json", stream=out, repeat_interval_s=3600)
    for attempt in range(1000):
        logging.getLogger("aiokafka").error("Unable to update metadata from [%s]", attempt)
    logging.getLogger("aiokafka").error("Fetch failed: %s", "disconnected")  # another template
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "Unable to update metadata from [0]",
        "Fetch failed: disconnected",
    ]


def test_the_next_line_after_an_interval_counts_what_was_dropped() -> None:
    now = [0.0]
    repeat = RepeatFilter(interval_s=30.0, clock=lambda: now[0])

    def record(n: int) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, "down %s", (n,), None)

    passed = []
    for second in range(95):
        now[0] = float(second)
        for n in range(10):  # ten a second, as aiokafka does while the broker is down
            rec = record(n)
            if repeat.filter(rec):
                passed.append((second, getattr(rec, "repeats", 0)))
    assert passed == [(0, 0), (30, 299), (60, 299), (90, 299)]


def test_warnings_are_not_dropped_for_other_loggers_or_levels() -> None:
    repeat = RepeatFilter(interval_s=30.0, clock=lambda: 0.0)
    first = logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, "down", (), None)
    other_logger = logging.LogRecord("faststream", logging.ERROR, __file__, 1, "down", (), None)
    other_level = logging.LogRecord("aiokafka", logging.WARNING, __file__, 1, "down", (), None)
    assert repeat.filter(first) and repeat.filter(other_logger) and repeat.filter(other_level)
