"""Fleet screen finds the injected accounts, in one set-based pass, thresholds as data."""

from __future__ import annotations

from services.data_agent.fleet import fleet_params, fleet_screen
from services.data_agent.warehouse.queries import FLEET_SCREEN
from services.data_agent.warehouse.rules import load_rules

from .conftest import AS_OF, Demo

EXPECTED = {
    "gradual_decline": "declining",
    "cliff": "major_decline",
    "complete_stop": "inactive",
    "spike": "spike",
    "cost_anomaly": "cost_anomaly",
}


def test_finds_injected_accounts(demo: Demo) -> None:
    found = {c.account_id: c for c in fleet_screen(demo.warehouse)}
    for aid, t in demo.truth["accounts"].items():
        if t["pattern"] in EXPECTED:
            assert EXPECTED[t["pattern"]] in found[aid].reasons, (aid, t["pattern"])
        if t["pattern"] == "stable":
            assert aid not in found, (aid, found.get(aid))
        if t["pattern"] == "complete_stop" and t["pattern_start"] <= "2025-05-31":
            assert "complete_stop" in found[aid].reasons  # zero for the whole last 30 days


def test_metrics_and_inactive_checked_first(demo: Demo) -> None:
    for c in fleet_screen(demo.warehouse):
        if "inactive" in c.reasons:
            assert c.metrics["idle_days"] >= 14
            assert not {"declining", "major_decline", "growing"} & set(c.reasons)
        if "major_decline" in c.reasons:
            assert c.metrics["trend_ratio"] < 0.3


def test_thresholds_are_parameters(demo: Demo) -> None:
    strict = load_rules().fleet.model_copy(
        update={"declining_below": 0.0, "spike_above": 1e9, "major_decline_below": 0.0}
    )
    reasons = {r for c in fleet_screen(demo.warehouse, thresholds=strict) for r in c.reasons}
    assert not {"declining", "major_decline", "spike"} & reasons
    sql, _ = FLEET_SCREEN.bind(fleet_params(AS_OF, load_rules().fleet))
    for literal in ("0.7", "1.3", "0.3", " 14"):
        assert literal not in sql


def test_as_of_moves_the_window(demo: Demo) -> None:
    """Before any injected change (200 days earlier) the decline/stop accounts are quiet."""
    from datetime import timedelta

    early = {c.account_id for c in fleet_screen(demo.warehouse, AS_OF - timedelta(days=200))}
    for aid, t in demo.truth["accounts"].items():
        if t["pattern"] in ("gradual_decline", "cliff", "complete_stop", "cost_anomaly"):
            assert aid not in early


def test_the_screen_reads_its_trend_thresholds_from_consumption_yaml(tmp_path) -> None:
    from services.common.settings import get_settings
    from services.decision_agent.consumption.analyzer import load_consumption_rules

    rules_dir = get_settings().rules_dir
    trend = load_consumption_rules(rules_dir).trend
    fleet = load_rules().fleet
    assert (
        fleet.major_decline_below,
        fleet.declining_below,
        fleet.growing_above,
        fleet.inactive_idle_days,
    ) == (trend.major_decline_below, trend.declining_below, trend.growing_above, trend.idle_days)
    edited = (
        (rules_dir / "consumption.yaml")
        .read_text()
        .replace("declining_below: 0.7", "declining_below: 0.55")
    )
    (tmp_path / "consumption.yaml").write_text(edited)
    assert load_rules(rules_dir=tmp_path).fleet.declining_below == 0.55
