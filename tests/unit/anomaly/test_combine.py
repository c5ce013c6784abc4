"""One likelihood for a group of channels: the strongest channel's, Bonferroni-corrected."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.decision_agent.anomaly.combine import combined_likelihood


def test_the_strongest_channel_minus_log10_of_the_channel_count() -> None:
    a = np.array([5.0, np.nan, 1.0, 0.0])
    b = np.array([2.0, 3.0, np.nan, 0.2])
    expected = np.array([5.0, 3.0, 1.0, 0.2]) - math.log10(2.0)
    np.testing.assert_allclose(combined_likelihood([a, b]), np.maximum(expected, 0.0))


def test_rows_no_channel_scored_get_zero_and_nothing_goes_negative() -> None:
    out = combined_likelihood([np.array([np.nan, 0.1]), np.array([np.nan, 0.2])] * 4)
    np.testing.assert_array_equal(out, [0.0, 0.0])  # 0.2 - log10(8) < 0


def test_a_single_channel_is_unchanged() -> None:
    x = np.array([0.0, 3.5, 7.25])
    np.testing.assert_array_equal(combined_likelihood([x]), x)


def test_eight_null_channels_alert_no_more_often_than_one() -> None:
    """Uniform p-values: at lambda >= 3 one channel crosses on 1 row in 1,000; the
    combination of eight crosses on at most about as many (Bonferroni is conservative)."""
    rng = np.random.default_rng(0)
    channels = [-np.log10(rng.random(200_000)) for _ in range(8)]
    single = np.mean(channels[0] >= 3.0)
    combined = np.mean(combined_likelihood(channels) >= 3.0)
    assert single == pytest.approx(1e-3, rel=0.2)
    assert combined <= 1.1e-3


def test_no_channel_is_an_error() -> None:
    with pytest.raises(ValueError, match="no channel"):
        combined_likelihood([])
