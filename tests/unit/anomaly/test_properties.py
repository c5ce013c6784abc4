"""Property tests: constant series, scale invariance, causality; plus bad-input rules."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from services.decision_agent.anomaly import DetectorConfig, score_series
from services.decision_agent.anomaly.cli import anomalies_app

DAY = 86_400.0
CFG = DetectorConfig()
values_st = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=90
)


def _times(n: int, step: float = DAY) -> np.ndarray:
    return 1_700_006_400.0 + step * np.arange(n)


@settings(max_examples=40, deadline=None)
@given(
    st.floats(min_value=0, max_value=1e9), st.integers(1, 120), st.sampled_from([60.0, 3600.0, DAY])
)
def test_constant_series_has_no_anomalies(level: float, n: int, step: float) -> None:
    result = score_series(_times(n, step), np.full(n, level), CFG)
    assert np.all(result.score == 0)
    assert set(result.reason) <= {"none", "not_enough_history"}


@settings(max_examples=40, deadline=None)
@given(values_st, st.integers(-20, 20))
def test_scaling_by_a_power_of_two_changes_nothing(values: list[float], power: int) -> None:
    data = np.array(values)
    base = score_series(_times(len(data)), data, CFG)
    scaled = score_series(_times(len(data)), data * 2.0**power, CFG)
    np.testing.assert_array_equal(base.score, scaled.score)
    assert base.reason == scaled.reason


@settings(max_examples=40, deadline=None)
@given(values_st, st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_by_any_positive_constant_keeps_scores(values: list[float], factor: float) -> None:
    data = np.array(values)
    base = score_series(_times(len(data)), data, CFG)
    scaled = score_series(_times(len(data)), data * factor, CFG)
    np.testing.assert_allclose(base.score, scaled.score, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(values_st, values_st)
def test_future_points_never_change_past_scores(past: list[float], future: list[float]) -> None:
    head = np.array(past)
    both = np.concatenate([head, np.array(future)])
    alone = score_series(_times(len(head)), head, CFG)
    extended = score_series(_times(len(both)), both, CFG)
    np.testing.assert_array_equal(alone.score, extended.score[: len(head)])
    assert alone.reason == extended.reason[: len(head)]


def test_bad_rows_are_dropped_or_clipped_and_reported() -> None:
    times = np.array([0, DAY, DAY, 2 * DAY, math.nan, 3 * DAY]) + _times(1)[0]
    values = np.array([10.0, 11.0, 12.0, math.nan, 5.0, -4.0])
    result = score_series(times, values, CFG)
    assert result.reason[2] == "dropped_duplicate"
    assert result.reason[3] == "dropped_invalid" and result.reason[4] == "dropped_invalid"
    assert math.isnan(result.score[2]) and math.isnan(result.score[3])
    assert result.clean.clipped == 1
    assert result.reason[5] == "not_enough_history"  # too few points: stated, not a zero
    assert result.reason[0] == "not_enough_history"


def test_unsorted_input_is_scored_in_time_order() -> None:
    rng = np.random.default_rng(0)
    data = rng.uniform(90, 110, 60)
    data[50] = 0
    order = rng.permutation(60)
    in_order = score_series(_times(60), data, CFG)
    shuffled = score_series(_times(60)[order], data[order], CFG)
    np.testing.assert_array_equal(in_order.score[order], shuffled.score)
    assert in_order.reason[50] == "stop"


def test_irregular_hourly_series_with_daily_cycle() -> None:
    rng = np.random.default_rng(1)
    hours = np.sort(rng.choice(24 * 60, size=24 * 50, replace=False)).astype(float)
    times = _times(1)[0] + hours * 3600 + rng.uniform(-300, 300, hours.size)
    daily = 1.0 + 0.8 * np.sin(2 * np.pi * (hours % 24) / 24)
    values = 1000 * daily * rng.lognormal(0, 0.05, hours.size)
    values[-30:] *= 0.2
    result = score_series(times, values, CFG)
    assert result.step_s == 3600
    alerts = np.nan_to_num(result.score) >= 0.5
    assert alerts[-30:].mean() > 0.8
    assert alerts[:-30].mean() < 0.02


def test_cli_writes_every_row(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    rows = ["timestamp,value"] + [f"2024-03-{d:02d},{100 + d % 3}" for d in range(1, 29)]
    rows += ["2024-03-29,0", "2024-03-29,5", "oops,3", "2024-03-30,abc"]
    source.write_text("\n".join(rows) + "\n")
    target = tmp_path / "out.csv"
    outcome = CliRunner().invoke(
        anomalies_app, ["score", "--input", str(source), "--output", str(target)]
    )
    assert outcome.exit_code == 0, outcome.output
    lines = target.read_text().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score,reason"
    assert len(lines) == len(rows)
    assert lines[29].endswith(",stop")
    assert lines[30].endswith(",,dropped_duplicate")
    assert lines[31].endswith(",,dropped_invalid") and lines[32].endswith(",,dropped_invalid")


def test_cli_refuses_a_file_without_the_columns(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("time,amount\n2024-01-01,3\n")
    outcome = CliRunner().invoke(
        anomalies_app, ["score", "--input", str(source), "--output", str(tmp_path / "o.csv")]
    )
    assert outcome.exit_code == 2
