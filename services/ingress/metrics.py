"""Ingress HTTP metrics (served on /metrics with the runtime's)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "revops_http_requests_total", "HTTP requests by route and status", ["route", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "revops_http_request_seconds",
    "HTTP request latency by route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def observe(route: str, method: str, status: int, started: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
