"""Delivery metrics (prometheus_client default registry). Breaker state is exported by
`services.common.breaker` itself."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "revops_deliveries_total",
    "Final delivery outcomes (success, failed, queued) and retried attempts (retry)",
    ["channel", "destination", "status"],
)
DELIVERY_SECONDS = Histogram(
    "revops_delivery_seconds",
    "Time of one delivery attempt (build, egress check, send)",
    ["channel"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERY_PENDING = Gauge(
    "revops_delivery_pending", "Jobs stored and not yet delivered", ["destination"]
)
