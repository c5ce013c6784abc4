"""Properties of the general detector: causality, invariance, silence on constant series."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.decision_agent.anomaly.detector import (
    ALERT_SCORE,
    LAMBDA_AT_HALF,
    NOTEWORTHY_LAMBDA,
    DetectorSettings,
    score_stream,
)
from services.decision_agent.anomaly.series import score_series

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
series_st = st.lists(finite, min_size=1, max_size=400)


def _noisy(seed: int, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = 10 + rng.normal(size=n).cumsum() * 0.1 + rng.normal(size=n)
    values[rng.integers(100, n, 3)] += rng.normal(0, 8, 3)
    values[n // 2 :] += rng.normal(0, 3)
    return values


@settings(max_examples=60)
@given(series_st, series_st)
def test_future_points_never_change_past_scores(past: list[float], future: list[float]) -> None:
    head = np.array(past)
    both = np.concatenate([head, np.array(future)])
    np.testing.assert_array_equal(
        score_stream(head).likelihood, score_stream(both).likelihood[: len(head)]
    )


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.integers(-12, 12), st.floats(-1e4, 1e4))
def test_scale_and_offset_do_not_change_scores(seed: int, power: int, offset: float) -> None:
    """Ranks and tail ratios are affine invariant: x -> a x + b (a != 0) gives the same
    likelihoods, for a negative a too (up to the rounding of the offset)."""
    values = _noisy(seed)
    base = score_stream(values).likelihood
    for factor in (2.0**power, -(2.0**power)):
        moved = score_stream(values * factor + offset).likelihood
        np.testing.assert_allclose(moved, base, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_the_optional_signals_are_invariant_too(seed: int) -> None:
    """Range and pattern (off by default, measured in the ablation) keep the invariance: a
    series and its negative, moved and scaled, have mirrored tails and mirrored patterns."""
    every_signal = DetectorSettings(use_range=True, use_pattern=True)
    values = _noisy(seed)
    base = score_stream(values, every_signal).likelihood
    assert base.max() > 0
    for factor, offset in ((-1.0, 0.0), (-32.0, 1234.5), (0.125, -7.0)):
        moved = score_stream(values * factor + offset, every_signal).likelihood
        np.testing.assert_allclose(moved, base, rtol=1e-6, atol=1e-6)


@settings(max_examples=30)
@given(st.integers(0, 10_000), st.floats(1e-3, 1e3))
def test_any_positive_scale_keeps_scores_close(seed: int, factor: float) -> None:
    values = _noisy(seed)
    np.testing.assert_allclose(
        score_stream(values * factor).score, score_stream(values).score, atol=1e-6
    )


@settings(max_examples=40)
@given(finite, st.integers(1, 3000))
def test_a_constant_series_never_alerts(level: float, n: int) -> None:
    result = score_stream(np.full(n, level))
    assert np.all(result.score == 0)


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.sampled_from([1.0, 0.5, 1e-3]))
def test_a_quantized_flat_series_does_not_alert_on_its_first_small_step(
    seed: int, quantum: float
) -> None:
    """Flat for a while, then steps of one quantum in either direction: that is the series'
    resolution, not an event (no spread yet must not mean an infinite surprise)."""
    rng = np.random.default_rng(seed)
    values = np.full(1500, 32.0)
    steps = np.flatnonzero(rng.random(1500) < 0.03)
    steps = steps[steps > 200]
    values[steps] += quantum * rng.choice([-1.0, 1.0], len(steps))
    assert score_stream(values).score.max() < ALERT_SCORE


def test_scores_are_continuous_ranks_not_a_few_values() -> None:
    """Below one in 10,000 (the noteworthy floor) a point scores 0; above, every point has
    its own score."""
    rng = np.random.default_rng(3)
    values = rng.standard_t(2, 50_000)  # heavy tails: many notable points
    scores = score_stream(values).score
    notable = scores[scores > 0]
    assert len(notable) > 10
    assert len(np.unique(notable)) == len(notable)
    floor = NOTEWORTHY_LAMBDA
    assert notable.min() >= floor / (floor + LAMBDA_AT_HALF)


def test_gaps_and_missing_values_are_skipped() -> None:
    values = _noisy(4)
    with_gaps = values.copy()
    with_gaps[[50, 51, 300]] = np.nan
    gapped = score_stream(with_gaps).likelihood
    compact = score_stream(values[~np.isnan(with_gaps)]).likelihood
    np.testing.assert_array_equal(gapped[~np.isnan(with_gaps)], compact)
    assert np.all(gapped[np.isnan(with_gaps)] == 0)


def _alarms(alerts: np.ndarray, gap: int = 32) -> int:
    """Alert points no more than `gap` points (the longest window) apart are one alarm: the
    rising edge of one event, seen first by the jump, then by the level windows."""
    return int(np.sum(np.diff(alerts) > gap)) + 1 if alerts.size else 0


@pytest.mark.parametrize(("shift", "seed"), [(4.0, 5), (4.0, 6), (10.0, 7), (-6.0, 8)])
def test_a_level_shift_is_one_alarm_then_absorbed(shift: float, seed: int) -> None:
    """A lasting shift of 4 noise SDs is certain within the longest level window (32
    points; one point of a Gaussian at 4 SD is 1 in 30,000, too common to alert on); a 10
    SD jump at once. The new level is normal once the reference is rebuilt from it: no
    alert after that."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=3000)
    values[2000:] += shift
    alerts = np.flatnonzero(score_stream(values).score >= ALERT_SCORE)
    assert alerts.size and 2000 <= alerts[0] <= (2000 if abs(shift) >= 10 else 2032)
    assert np.all(alerts < 2000 + 48)
    assert _alarms(alerts) == 1


def test_a_spike_on_a_cycle_is_found_and_the_cycle_is_not() -> None:
    rng = np.random.default_rng(6)
    t = np.arange(4000)
    values = np.sin(2 * np.pi * t / 288) + 0.1 * rng.normal(size=t.size)
    values[3000] += 2.0
    scores = score_stream(values).score
    assert scores[3000] >= ALERT_SCORE
    assert np.sum(scores >= ALERT_SCORE) <= 3


def test_series_rules_keep_every_row_in_place() -> None:
    day = 86_400.0
    times = np.array([0, 1, 1, 3, np.nan, 2, 4, 5, 6, 7], dtype=float) * day
    values = np.array([1, 2, 3, 4, 5, -6, np.nan, np.nan, 9, 10], dtype=float)
    invalid = np.zeros(10, bool)
    invalid[7] = True
    result = score_series(times, values, invalid)
    assert len(result.score) == 10 and len(result.reason) == 10
    assert result.reason[4] == "invalid_timestamp"
    assert result.reason[6] == "missing_value"
    assert result.reason[7] == "invalid_value"
    assert result.reason[0] == "learning"  # too little history
    assert np.all(result.score == 0)
    s = result.summary
    assert (s.invalid_timestamp, s.missing_value, s.invalid_value) == (1, 1, 1)
    assert s.out_of_order == 1  # the row at day 2 comes after day 3
    assert s.duplicate_timestamp == 1
