"""The bench's per-phase CPU lines: a phase's CPU per flow per process, its total, and how
many cores a rate of flows keeps busy at that cost (why 50 flows/s queues on two cores)."""

from __future__ import annotations

import pytest

from bench.run_all import cores_used, per_process, phase_cpu


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
