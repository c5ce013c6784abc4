"""The detector on real labelled sensor series (SKAB, ../shared/data/skab).

Each channel of a SKAB experiment is one series; the labelled period starts at the
`anomaly` column's first 1. A channel that shows the anomalous regime must be found
within 25 rows of its onset (one second each), before any alert in the 300 normal rows
before it, and the lasting regime must not re-alert after its first alarm (alerts within
32 rows of each other - the detector's longest window - are one alarm). The labels belong
to the experiment, so the window score is computed per experiment (channels combined).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.anomaly_baselines import random_likelihood, windowed_gaussian
from bench.anomaly_corpora import Experiment, Series, skab, skab_anomaly_free, skab_experiments
from services.decision_agent.anomaly.combine import combined_likelihood
from services.decision_agent.anomaly.detector import ALERT_SCORE, score_stream
from services.decision_agent.anomaly.evaluation import PROFILES, LabelledScores, evaluate
from services.decision_agent.anomaly.labels import windows_from_flags
from services.decision_agent.anomaly.scoring_io import score_file
from services.decision_agent.anomaly.table import numeric_column, read_table
from tests.unit.anomaly.real_data import require_skab

ONSET_DELAY_ROWS = 25
ALARM_GAP_ROWS = 32


@pytest.fixture(scope="module")
def corpus() -> list[Series]:
    require_skab()
    return skab()


def _channel(corpus: list[Series], name: str) -> Series:
    return next(s for s in corpus if s.name == f"skab/{name}")


def _labelled_period(name: str) -> tuple[int, int]:
    table = read_table(require_skab() / name.split(":")[0])
    flags = numeric_column(table, "anomaly")[0]
    rows = np.flatnonzero(flags)
    return int(rows[0]), int(rows[-1])


@pytest.mark.parametrize(
    "name",
    [
        "valve1/0.csv:Volume Flow RateRMS",
        "valve1/8.csv:Volume Flow RateRMS",
        "valve2/0.csv:Accelerometer1RMS",
        "other/2.csv:Temperature",
    ],
)
def test_onset_found_soon_and_the_lasting_regime_is_one_alarm(
    corpus: list[Series], name: str
) -> None:
    series = _channel(corpus, name)
    onset, end = _labelled_period(name)
    alerts = np.flatnonzero(score_stream(series.values).score >= ALERT_SCORE)
    before = alerts[(alerts >= onset - 300) & (alerts < onset)]
    during = alerts[(alerts >= onset) & (alerts <= end)]
    assert before.size == 0, before
    assert during.size and during[0] - onset <= ONSET_DELAY_ROWS, during
    assert np.all(np.diff(during) <= ALARM_GAP_ROWS), during  # one alarm
    assert end - onset > 300  # the regime lasts hundreds of rows after it


def test_negative_values_are_kept_and_scored_like_any_value(
    corpus: list[Series], tmp_path: Path
) -> None:
    """Pressure goes below zero; nothing is clipped: the CLI writes the values as given and
    scores them exactly like the same series moved above zero."""
    name = "valve1/0.csv:Pressure"
    series = _channel(corpus, name)
    assert np.sum(series.values < 0) > 100
    source = tmp_path / "pressure.csv"
    texts = [repr(float(v)) for v in series.values]
    source.write_text(
        "timestamp,value\n"
        + "\n".join(f"{int(t)},{v}" for t, v in zip(series.times_s, texts, strict=True))
    )
    score_file(source, tmp_path / "out.csv", "timestamp", "value")
    out = read_table(tmp_path / "out.csv")
    assert out.column("value") == texts
    written = np.array([float(x) for x in out.column("anomaly_score")])
    shifted = score_stream(series.values + 10.0).score
    np.testing.assert_allclose(written, shifted, atol=1e-6)


Likelihood = Callable[[np.ndarray, str], np.ndarray]


def _per_experiment(
    experiments: list[Experiment], likelihood: Likelihood, labelled: bool = True
) -> list[LabelledScores]:
    """Each experiment's channels scored one by one and combined (lambda_max - log10 k)."""
    return [
        LabelledScores(
            e.name,
            combined_likelihood([likelihood(s.values, s.name) for s in e.series()]),
            e.windows if labelled else (),
        )
        for e in experiments
    ]


def _ours(values: np.ndarray, name: str) -> np.ndarray:
    return score_stream(values).likelihood


def test_per_experiment_better_than_the_windowed_gaussian_and_chance_and_quiet_on_normal_data(
    corpus: list[Series],
) -> None:
    """The window score on the 34 SKAB experiments beats the classic windowed z-score and
    random scores (the chance level) through the same channel combination, and at the
    threshold chosen on SKAB the anomaly-free run (8 channels combined, 9,405 rows) has at
    most one false alarm per 1,000 rows."""
    standard = PROFILES["standard"]
    experiments = skab_experiments()
    ours = evaluate(_per_experiment(experiments, _ours), standard)
    for baseline in (lambda v, n: windowed_gaussian(v), random_likelihood):
        assert (
            ours.normalized > evaluate(_per_experiment(experiments, baseline), standard).normalized
        )
    free = _per_experiment([skab_anomaly_free()], _ours, labelled=False)
    assert evaluate(free, standard, ours.threshold).false_alarms_per_1000 <= 1.0


def test_label_column_windows_start_at_each_onset(corpus: list[Series]) -> None:
    series = _channel(corpus, "valve1/0.csv:Current")
    onset, end = _labelled_period("valve1/0.csv:Current")
    table = read_table(require_skab() / "valve1/0.csv")
    (window,) = windows_from_flags(numeric_column(table, "anomaly")[0])
    assert window.start == onset and window.width == int(0.1 * len(series.values))
    assert window.end < end
