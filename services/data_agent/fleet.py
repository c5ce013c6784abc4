"""Daily fleet screen: which accounts have something to say about their consumption.

One set-based query over `consumption_daily_f` (`queries.FLEET_SCREEN`) computes per
account the trend ratio (last 30 days x 3 vs the last 90 days), idle days, the 30-day
zero, a daily spike ratio and the cost-vs-usage growth, and returns only flagged accounts;
no per-account query loop. Thresholds are those of docs/domain.md §4, bound as parameters
(`rules.yaml` -> `fleet`).

The trend ratio's "> 3 = spike" cannot fire when the 90-day window contains the 30-day one
(the ratio is at most 3 by construction), so a spike is detected the way docs/domain.md §4's daily
anomaly rule says: a day of the last week above 3x the daily mean of the 30 days before.
Cost anomaly: daily cost of the last 30 days >= 3x the daily cost of days 31-90 while daily
usage did not grow past the "growing" threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from services.data_agent.warehouse.base import Row, Warehouse
from services.data_agent.warehouse.meta import meta_as_of, read_meta
from services.data_agent.warehouse.queries import FLEET_SCREEN
from services.data_agent.warehouse.rules import FleetThresholds, load_rules

# Reason name -> flag column of FLEET_SCREEN, in report order.
REASONS: dict[str, str] = {
    "inactive": "is_inactive",
    "complete_stop": "is_complete_stop",
    "major_decline": "is_major_decline",
    "declining": "is_declining",
    "growing": "is_growing",
    "spike": "is_spike",
    "cost_anomaly": "is_cost_anomaly",
}
METRICS = ("trend_ratio", "idle_days", "spike_ratio", "cost_growth", "usage_growth")


@dataclass(frozen=True)
class FleetCandidate:
    account_id: str
    reasons: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)


def fleet_params(as_of: date, t: FleetThresholds) -> dict[str, Any]:
    """Bound parameters of FLEET_SCREEN: window bounds as dates, thresholds as numbers."""
    recent_start = as_of - timedelta(days=t.recent_days)
    spike_start = as_of - timedelta(days=t.spike_recent_days)
    return {
        "as_of": as_of,
        "recent_start": recent_start,
        "trend_start": as_of - timedelta(days=t.trend_days),
        "spike_start": spike_start,
        "spike_base_start": spike_start - timedelta(days=t.spike_baseline_days),
        "recent_days": float(t.recent_days),
        "base_days": float(t.trend_days - t.recent_days),
        "spike_baseline_days": float(t.spike_baseline_days),
        "inactive_idle_days": t.inactive_idle_days,
        "major_decline_below": t.major_decline_below,
        "declining_below": t.declining_below,
        "growing_above": t.growing_above,
        "spike_above": t.spike_above,
        "cost_growth_at_least": t.cost_growth_at_least,
    }


def _candidate(row: Row) -> FleetCandidate:
    reasons = [name for name, col in REASONS.items() if row[col]]
    metrics = {m: (None if row[m] is None else round(float(row[m]), 4)) for m in METRICS}
    last = row.get("last_active_date")
    metrics["last_active_date"] = last.isoformat() if last else None
    return FleetCandidate(account_id=row["sf_account_id"], reasons=reasons, metrics=metrics)


def fleet_screen(
    warehouse: Warehouse,
    as_of: date | None = None,
    thresholds: FleetThresholds | None = None,
    chunk_rows: int = 10_000,
) -> list[FleetCandidate]:
    """Accounts with something to say on `as_of` (default: the warehouse's as_of)."""
    as_of = as_of or meta_as_of(read_meta(warehouse))
    params = fleet_params(as_of, thresholds or load_rules().fleet)
    return [
        _candidate(row)
        for chunk in warehouse.fetch_chunks(FLEET_SCREEN, params, chunk_rows)
        for row in chunk
    ]
