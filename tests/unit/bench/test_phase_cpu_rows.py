"""The bench's per-phase CPU lines: a phase's CPU per flow per process, its total, and how
many cores a rate of flows keeps busy at that cost (why 50 flows/s queues on two cores)."""

from __future__ import annotations

import pytest

from bench.run_all import cores_used, like_for_like_cpu_rows, per_process, phase_cpu


def test_phase_cpu_is_each_process_difference_per_flow():
    before = {"data_agent": 1.0, "broker": 2.0}
    after = {"data_agent": 1.5, "broker": 2.25, "decision_agent": 0.1}
    assert phase_cpu(before, after, 50) == {
        "data_agent": 10.0,
        "broker": 5.0,
        "decision_agent": 2.0,
    }


def test_per_process_prints_the_total_then_each():
    assert per_process({"data_agent": 2.0, "broker": 1.5}) == "3.5 (data_agent 2.0, broker 1.5)"


def test_cores_used_at_a_rate():
    # 36 ms of CPU per flow at 50 flows/s: 1.8 cores.
    assert cores_used({"a": 20.0, "b": 16.0}, 50) == pytest.approx(1.8)


def test_cpu_per_flow_is_compared_with_the_peer_s_phase_of_the_same_kind():
    pipe = {
        "cpu_ms_per_flow_at_saturation": {"data_agent": 6.0, "broker": 4.0},
        "cpu_ms_per_flow_at_50_flows_per_s": {"data_agent": 20.0, "broker": 10.0},
    }
    peer = {
        "phases": {
            "sustained_20kb": {"cpu_ms_per_flow": {"peer_stage_1": 0.3, "kafka_broker": 0.2}},
            "latency_at_50_flows_per_s": {
                "cpu_ms_per_flow": {"peer_stage_1": 5.0, "kafka_broker": 2.5}
            },
        }
    }
    assert [(label, value) for label, value, _ in like_for_like_cpu_rows(pipe, peer)] == [
        ("CPU ms per flow in a burst offered at once, project vs peer", "10.0 vs 0.5 = 20.0x"),
        ("CPU ms per flow at 50 flows/s, project vs peer", "30.0 vs 7.5 = 4.0x"),
    ]


def test_a_phase_either_side_did_not_measure_gets_no_comparison():
    pipe = {"cpu_ms_per_flow_at_50_flows_per_s": {"data_agent": 20.0}}
    assert like_for_like_cpu_rows(pipe, {"phases": {}}) == []


def test_per_process_names_what_finished_children_used():
    # The execution agent's export child ran (for earlier phases' changes) and was reaped in
    # this one: its CPU is in the agent's figure, and the line says how much of it.
    line = per_process({"execution_agent": 20.8, "broker": 3.0}, {"execution_agent": 11.2})
    assert line == "23.8 (execution_agent 20.8 of which finished children 11.2, broker 3.0)"


def test_the_sampler_keeps_finished_childrens_cpu_apart():
    import os
    import subprocess
    import sys

    from bench.procstats import ResourceSampler

    sampler = ResourceSampler({"me": os.getpid()}, period_s=60)
    with sampler:
        before = sampler.snapshot()
        children_before = sampler.children_snapshot()
        # A child that burns some CPU and is waited for (reaped), as the agent's export child.
        subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
        after = sampler.snapshot()
        children = sampler.children_snapshot()["me"] - children_before["me"]
    assert children > 0.05
    # The sampler keeps milliseconds (psutil's CPU times tick by 10 ms): compared at that
    # precision, not as floats (0.18 - 0.01 < 0.17 failed a run whose figures were equal).
    assert round(after["me"] - before["me"], 3) >= round(children, 3)
