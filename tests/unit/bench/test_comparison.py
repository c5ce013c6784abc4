"""The project's headline figures and issue 15's target verdicts, from result dicts."""

from __future__ import annotations

from typing import Any

import pytest

from bench.comparison import product_shape_rows, project_headline, target_rows
from bench.run_all import phase_cpu


def _results(sustained: float, cpu: dict[str, float], rss: float) -> dict[str, Any]:
    return {
        "pipeline": {
            "sustained_flows_per_s": sustained,
            "latency_at_50_flows_per_s": {"latency_ms": {"p50": 30.0, "p99": 90.0}},
            "latency_at_share_of_capacity": {"50%": {"latency_ms": {"p50": 40.0, "p99": 200.0}}},
        },
        "resources": {
            "data_agent": {"peak_rss_mb": rss},
            "execution_agent": {"peak_rss_mb": 80.0},
            "kafka_broker": {"peak_rss_mb": 900.0},  # not a service of ours
        },
        "cpu_ms_per_flow": cpu,
    }


PEER = {
    "sustained_flows_per_s": 1000.0,
    "p50_ms_at_50_flows_per_s": 20.0,
    "p99_ms_at_half_capacity": 150.0,
    "cpu_ms_per_flow": 3.0,
    "peak_rss_mb_per_service": 50.0,
}


def test_headline_uses_the_peer_names_and_leaves_the_broker_out_of_rss() -> None:
    h = project_headline(_results(600.0, {"data_agent": 1.5, "kafka_broker": 2.0}, 120.0))
    assert h["sustained_flows_per_s"] == 600.0
    assert h["cpu_ms_per_flow"] == pytest.approx(3.5)  # broker included in CPU
    assert h["peak_rss_mb_per_service"] == 120.0
    assert (h["p50_ms_at_50_flows_per_s"], h["p99_ms_at_half_capacity"]) == (30.0, 200.0)


def test_every_target_met() -> None:
    rows = target_rows(project_headline(_results(600.0, {"a": 4.0}, 120.0)), PEER)
    assert [r[2].split(": ")[-1] for r in rows] == ["met"] * 5
    assert rows[0][1] == "600.0 vs peer 1,000.0 = 0.60x"


def test_missed_targets_are_named() -> None:
    rows = target_rows(project_headline(_results(20.0, {"a": 100.0}, 160.0)), PEER)
    verdicts = {label.removeprefix("issue 15: "): v for label, _, v in rows}
    assert verdicts["sustained throughput"] == ">= 0.5x peer: MISSED"
    assert verdicts["CPU per flow, all processes"] == "<= 5 ms: MISSED"
    assert verdicts["peak RSS per service"] == "< 150 MB: MISSED"
    assert verdicts["p50 at 50 flows/s"] == "<= 2x peer: met"  # 30 / 20 = 1.5x


def test_a_missing_figure_is_missed_not_met() -> None:
    results = _results(600.0, {"a": 1.0}, 100.0)
    results["pipeline"]["latency_at_share_of_capacity"] = {}
    verdicts = [r[2] for r in target_rows(project_headline(results), PEER)]
    assert "< 250 ms: MISSED" in verdicts


def test_phase_cpu_is_the_difference_per_flow_of_two_snapshots() -> None:
    before = {"data_agent": 10.0, "kafka_broker": 4.0}
    after = {"data_agent": 12.5, "kafka_broker": 5.0, "decision_agent#1": 0.5}
    assert phase_cpu(before, after, 500) == {
        "data_agent": 5.0,
        "kafka_broker": 2.0,
        "decision_agent#1": 1.0,  # started during the phase: all of its CPU counts
    }
    assert phase_cpu(before, before, 0) == {"data_agent": 0.0, "kafka_broker": 0.0}


def test_the_project_is_set_against_the_peer_of_its_own_flow() -> None:
    results = _results(300.0, {"a": 10.0}, 120.0)
    results["pipeline"]["cpu_ms_per_flow_at_saturation"] = {"a": 5.0, "kafka_broker": 2.5}
    results["pipeline"]["cpu_ms_per_flow_at_50_flows_per_s"] = {"a": 15.0, "kafka_broker": 5.0}
    results["pipeline"]["load_phases"] = [
        {"completed": 300, "cpu_key": "cpu_ms_per_flow_at_saturation"},  # 7.5 ms
        {"completed": 100, "cpu_key": "cpu_ms_per_flow_at_50_flows_per_s"},  # 20 ms
        {"completed": 100, "cpu_key": "not_measured"},  # left out
    ]
    peer = PEER | {
        "cpu_ms_per_flow_over_the_load_phases_product_shape": 5.0,
        "p99_ms_at_half_capacity_product_shape": 20.0,
        "sustained_flows_per_s_product_shape": 600.0,
        "p50_ms_at_50_flows_per_s_product_shape": 7.5,
        "cpu_ms_per_flow_in_burst_product_shape": 2.5,
        "cpu_ms_per_flow_at_50_flows_per_s_product_shape": 10.0,
    }
    rows = {label: value for label, value, _ in product_shape_rows(project_headline(results), peer)}
    assert rows == {
        "peer of the product's flow: sustained vs the 2 KB peer": "600.0 vs 1,000.0 = 0.60x",
        "project vs peer of its flow: sustained throughput, flows/s": "300.0 vs 600.0 = 0.50x",
        "project vs peer of its flow: p50 at 50 flows/s, ms": "30.0 vs 7.5 = 4.00x",
        "project vs peer of its flow: CPU per flow in a burst, ms": "7.5 vs 2.5 = 3.00x",
        "project vs peer of its flow: CPU per flow at 50 flows/s, ms": "20.0 vs 10.0 = 2.00x",
        # (300 x 7.5 + 100 x 20) / 400 flows
        "project vs peer of its flow: CPU per flow over the run's load phases, ms": (
            "10.6 vs 5.0 = 2.12x"
        ),
        "project vs peer of its flow: p99 at the project's half capacity, ms": (
            "200.0 vs 20.0 = 10.00x"
        ),
    }


def test_no_product_shape_rows_when_the_peer_did_not_run_it() -> None:
    assert product_shape_rows(project_headline(_results(300.0, {"a": 1.0}, 100.0)), PEER) == []
