"""Prometheus metrics every service exports (names are used by deploy/prometheus alerts)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_service = "unknown"


def configure(service: str) -> None:
    """Name the process once at start-up; every runtime metric carries it as a label."""
    global _service
    _service = service


def service_name() -> str:
    return _service


MESSAGES_CONSUMED = Counter(
    "revops_messages_consumed_total", "Records consumed", ["service", "topic"]
)
MESSAGES_PRODUCED = Counter(
    "revops_messages_produced_total", "Records produced", ["service", "topic"]
)
MESSAGES_FAILED = Counter(
    "revops_messages_failed_total", "Handler attempts that failed", ["service", "topic", "code"]
)
MESSAGES_DEAD_LETTERED = Counter(
    "revops_messages_dead_lettered_total",
    "Records sent to a dead-letter topic",
    ["service", "topic", "code"],
)
MESSAGES_DUPLICATE = Counter(
    "revops_messages_duplicate_total",
    "Records skipped because their idempotency key was already processed",
    ["service", "topic"],
)
RETRIES = Counter("revops_retries_total", "Handler retries", ["service", "topic"])
PROCESSING_SECONDS = Histogram(
    "revops_message_processing_seconds",
    "Time to handle one record (parse to output produced)",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "revops_consumer_lag", "Records behind the high watermark", ["service", "topic", "partition"]
)
BREAKER_STATE = Gauge(
    "revops_circuit_breaker_state",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open",
    ["service", "breaker"],
)
FLOWS_COMPLETED = Counter(
    "revops_flows_completed_total", "Flows completed", ["analysis_type", "status"]
)
FLOW_DURATION = Histogram(
    "revops_flow_duration_seconds",
    "Trigger accepted to flow output",
    ["analysis_type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
HOUSEKEEPING_RUNS = Counter(
    "revops_housekeeping_runs_total",
    "Runs of a service's housekeeping timers (purges, expiries)",
    ["service", "task", "outcome"],
)
STAGE_SECONDS = Histogram(
    "revops_stage_seconds",
    "Domain work per stage (warehouse read, scoring, planning)",
    ["service", "stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)


def set_breaker_state(breaker: str, value: int) -> None:
    BREAKER_STATE.labels(_service, breaker).set(value)
