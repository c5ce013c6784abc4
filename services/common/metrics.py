"""Prometheus metrics every service exports (names are used by deploy/prometheus alerts).

Labelled counters are exported at 0 for every label set known in advance (`initialise_*`):
Prometheus' `increase()` cannot see the first event of a series that is born at 1, so an
alert on "any dead letter" would miss the first one of each code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contracts import AgentName, AnalysisType
from services.common.errors import DEAD_LETTER_CODES

_service = "unknown"


def configure(service: str) -> None:
    """Name the process once at start-up; every runtime metric carries it as a label, and
    `revops_service_info{service=...}` says this service is being scraped."""
    global _service
    _service = service
    SERVICE_INFO.labels(service).set(1)
    KAFKA_CLIENTS_REPLACED.labels(service)
    if service == AgentName.EXECUTION_AGENT.value:  # the one process that counts flows
        initialise_flows()


def service_name() -> str:
    return _service


SERVICE_INFO = Gauge(
    "revops_service_info",
    "1 for each service this process runs (RevopsServiceDown: a service with no such series)",
    ["service"],
)
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
STORE_UNAVAILABLE = Counter(
    "revops_store_unavailable_total",
    "Calls that found the operational store (PostgreSQL) out of reach; retried with backoff",
    ["service"],
)
KAFKA_CLIENTS_REPLACED = Counter(
    "revops_kafka_clients_replaced_total",
    "Times the service replaced its Kafka clients after repeated produce failures",
    ["service"],
)
PROCESSING_SECONDS = Histogram(
    "revops_message_processing_seconds",
    "Time to handle one record (parse to output produced)",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_RECORDS = Histogram(
    "revops_batch_records",
    "Records per consumed batch: 1 at light load (each record pays the batch's fixed cost: "
    "verification, store transaction, produce and commit), larger when the consumer catches up",
    ["service", "topic"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
CONSUMER_LAG = Gauge(
    "revops_consumer_lag",
    "Records after the consumer group's committed offset (end offset - committed offset)",
    ["service", "topic", "partition"],
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
HOUSEKEEPING_OUTCOMES = ("ok", "failed")
STAGE_SECONDS = Histogram(
    "revops_stage_seconds",
    "Domain work per stage (warehouse read, scoring, planning)",
    ["service", "stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
# What the execution agent counts a flow output as (FlowOutput.status).
FLOW_STATUSES = ("success", "partial", "failed")


class _BreakerStates(Collector):
    """`revops_circuit_breaker_state{service, breaker}`, labelled when scraped: a breaker
    built before the process named itself (configure) is still exported under its service,
    never under "unknown"."""

    def __init__(self) -> None:
        self._states: dict[str, int] = {}

    def set(self, breaker: str, value: int) -> None:
        self._states[breaker] = value

    def value(self, breaker: str) -> int | None:
        return self._states.get(breaker)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "revops_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            labels=["service", "breaker"],
        )
        for breaker, value in sorted(self._states.items()):
            family.add_metric([_service, breaker], value)
        yield family


BREAKER_STATES = _BreakerStates()
REGISTRY.register(BREAKER_STATES)


def set_breaker_state(breaker: str, value: int) -> None:
    BREAKER_STATES.set(breaker, value)


def initialise_consumer(service: str, topic: str, dlq_topic: str) -> None:
    """Export every counter of a consumer of `topic` at 0, one series per known code."""
    for counter in (MESSAGES_CONSUMED, MESSAGES_DUPLICATE, RETRIES):
        counter.labels(service, topic)
    MESSAGES_PRODUCED.labels(service, dlq_topic)
    for code in DEAD_LETTER_CODES:
        MESSAGES_FAILED.labels(service, topic, code)
        MESSAGES_DEAD_LETTERED.labels(service, topic, code)


def initialise_producer(service: str, topics: Iterable[str]) -> None:
    for topic in topics:
        MESSAGES_PRODUCED.labels(service, topic)


def initialise_housekeeping(service: str, task: str) -> None:
    for outcome in HOUSEKEEPING_OUTCOMES:
        HOUSEKEEPING_RUNS.labels(service, task, outcome)


def initialise_flows() -> None:
    """The execution agent's flow counters, one series per analysis type and status."""
    for analysis in AnalysisType:
        for status in FLOW_STATUSES:
            FLOWS_COMPLETED.labels(analysis.value, status)
