"""What every fault run must end with (bench.chaos summary): nothing lost, nothing twice."""

from __future__ import annotations

from typing import Any


def assert_every_effect_accounted_for(summary: dict[str, Any], triggers: int) -> None:
    assert summary["flows_completed"] == triggers
    assert summary["lost_flows"]["count"] == 0
    assert summary["conflicting_flow_records"]["count"] == 0
    assert summary["lost_actions"]["count"] == 0
    assert summary["failed_actions"]["count"] == 0
    assert summary["unplanned_deliveries"]["count"] == 0
    assert summary["order_violations"]["count"] == 0
    assert summary["duplicate_active_insights"]["count"] == 0
    assert summary["delivery_log_mismatches"]["count"] == 0
    assert summary["delivered_exactly_once"] > 0
