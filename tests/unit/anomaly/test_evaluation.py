"""The window-based score (NAB method) against figures computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from services.decision_agent.anomaly.cli import anomalies_app
from services.decision_agent.anomaly.evaluation import (
    PROFILES,
    LabelledScores,
    Window,
    chance_level,
    evaluate,
    probation_rows,
    scaled_sigmoid,
    sweep,
)
from services.decision_agent.anomaly.labels import windows_from_flags

STANDARD = PROFILES["standard"]


def sigma(y: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def test_scaled_sigmoid_and_probation_rule() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(3.5) == -1.0
    assert probation_rows(40) == 6  # 15 %
    assert probation_rows(100_000) == 750  # capped


# A tiny labelled file: 40 rows, probation 6 rows, one window on rows 20..29 (width 10).
# Scores: 0.9 on row 3 (probation: ignored), 0.8 on row 10 (false alarm before the window:
# full cost 0.11), 0.7 on row 22 (first detection in the window: y = -(29 - 22 + 1)/10 =
# -0.8), 0.95 on row 25 (a later detection in the window: free), 0.6 on row 31 (after the
# window: y = (31 - 29)/10 = 0.2, cost 0.11 x -sigma(0.2)).
TINY_SCORES = np.zeros(40)
TINY_SCORES[[3, 10, 22, 25, 31]] = [0.9, 0.8, 0.7, 0.95, 0.6]
TINY = LabelledScores("tiny.csv", TINY_SCORES, (Window(20, 29),))


def test_tiny_file_by_hand_at_each_threshold() -> None:
    null, perfect = -1.0, sigma(-1.0)
    at = {
        # only row 25 (y = -0.5)
        0.95: sigma(-0.5),
        # rows 10, 22, 25: 22 is the first in the window
        0.7: sigma(-0.8) - 0.11,
        # + row 31 after the window
        0.6: sigma(-0.8) - 0.11 + 0.11 * sigma(0.2),
    }
    for threshold, raw in at.items():
        result = evaluate([TINY], STANDARD, threshold)
        assert result.raw == pytest.approx(raw)
        assert result.normalized == pytest.approx(100 * (raw - null) / (perfect - null))
    # The sweep tries every distinct score: 0.7 is best (0.964 - 0.11 = 0.854 > 0.848 at
    # 0.95 > 0.782 at 0.6).
    swept = sweep([TINY], STANDARD)
    assert swept.threshold == 0.7
    assert swept.normalized == pytest.approx(100 * (at[0.7] + 1) / (sigma(-1.0) + 1))


def test_profiles_weigh_false_alarms_and_misses() -> None:
    low_fp = evaluate([TINY], PROFILES["reward_low_fp"], 0.6)
    assert low_fp.raw == pytest.approx(sigma(-0.8) - 0.22 + 0.22 * sigma(0.2))
    missed = evaluate([TINY], PROFILES["reward_low_fn"], 0.99)
    assert missed.raw == pytest.approx(-2.0) and missed.normalized == pytest.approx(0.0)


def test_event_figures_at_the_threshold() -> None:
    result = evaluate([TINY], STANDARD, 0.6)
    assert result.recall == 1.0
    assert result.series[0].delays == [2]  # row 22 is 2 rows after the window's start
    assert result.precision == pytest.approx(2 / 4)  # alarms: rows 10, 22, 25, 31
    assert result.false_alarms_per_1000 == pytest.approx(1000 * 2 / 34)


def test_one_threshold_for_the_whole_corpus() -> None:
    """The best threshold of each file alone differs; the corpus gets one."""
    quiet = np.zeros(40)
    quiet[24] = 0.3  # detected only at a low threshold
    noisy = np.zeros(40)
    noisy[[8, 9, 12, 15]] = 0.5  # four false alarms at 0.5
    corpus = [
        LabelledScores("a", quiet, (Window(20, 29),)),
        LabelledScores("b", noisy, (Window(30, 39),)),
    ]
    swept = sweep(corpus, STANDARD)
    # 0.5: a misses, b 4 false alarms: -1 - 1 - 0.44; 0.3: a found, b's alarms count:
    # sigma(-0.6) - 0.44 - 1. The second is better and is chosen for both files.
    assert swept.threshold == 0.3
    assert swept.raw == pytest.approx(sigma(-0.6) - 0.44 - 1.0)


def test_windows_from_a_label_column_use_the_window_budget() -> None:
    flags = np.zeros(200)
    flags[50:120] = 1  # one labelled period of 70 rows
    flags[150:152] = 1  # a second one of 2 rows
    assert windows_from_flags(flags) == (Window(50, 59), Window(150, 151))


def _write(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def test_cli_reproduces_the_hand_computed_score(tmp_path: Path) -> None:
    data = tmp_path / "scored"
    stamps = [f"2024-01-01 00:{k:02d}:00" for k in range(40)]
    _write(
        data / "m" / "tiny.csv",
        ["timestamp,value,anomaly_score"]
        + [f"{s},1.0,{TINY_SCORES[k]}" for k, s in enumerate(stamps)],
    )
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"m/tiny.csv": [[stamps[20], stamps[29]]]}))
    outcome = CliRunner().invoke(
        anomalies_app,
        ["evaluate", "--data", str(data), "--labels", str(labels), "--profile", "standard"],
    )
    assert outcome.exit_code == 0, outcome.output
    expected = 100 * (sigma(-0.8) - 0.11 + 1) / (sigma(-1.0) + 1)
    assert f"score {expected:6.1f}  threshold 0.7 " in outcome.output
    assert "windows 1/1" in outcome.output
    # the same file labelled by a column
    _write(
        data / "m" / "tiny.csv",
        ["timestamp,anomaly_score,anomaly"]
        + [f"{s},{TINY_SCORES[k]},{int(20 <= k <= 29)}" for k, s in enumerate(stamps)],
    )
    outcome = CliRunner().invoke(
        anomalies_app, ["evaluate", "--data", str(data), "--label-column", "anomaly"]
    )
    assert outcome.exit_code == 0, outcome.output
    # 40 rows x 10 % = a 4-row window 20..23: at 0.7 row 22 is the first detection
    # (y = -2/4), row 10 a false alarm, row 25 one half a window after it (y = 2/4)
    raw = sigma(-0.5) - 0.11 + 0.11 * sigma(0.5)
    narrow = 100 * (raw + 1) / (sigma(-1.0) + 1)
    assert f"standard       score {narrow:6.1f}" in outcome.output


def _corpus(
    files: int, rows: int, window: tuple[int, int], scores: float = 0.0
) -> list[LabelledScores]:
    return [
        LabelledScores(f"s{k}.csv", np.full(rows, scores), (Window(*window),)) for k in range(files)
    ]


def test_the_chance_level_follows_how_much_of_the_corpus_is_windows() -> None:
    """Random scores find wide windows often and narrow ones in long series rarely: the
    figure a detector must beat depends on the corpus, which is why evaluate prints it."""
    wide = chance_level(_corpus(30, 400, (100, 399)), STANDARD)
    narrow = chance_level(_corpus(30, 4000, (2000, 2004)), STANDARD)
    assert wide > 50 > 10 > narrow >= 0
    assert chance_level(_corpus(30, 400, (100, 399)), STANDARD) == wide  # seeded: repeatable
    # rows the detector left unscored stay unscored: nothing to flag, the null detector's 0
    assert chance_level(_corpus(5, 400, (100, 399), scores=np.nan), STANDARD) == 0.0


def test_evaluate_prints_the_chance_level_and_says_when_it_is_not_beaten(
    tmp_path: Path,
) -> None:
    rows = 200
    stamps = [f"2024-01-01 {k // 60:02d}:{k % 60:02d}:00" for k in range(rows)]
    for name, hit in (("silent", None), ("early", 100)):
        for k in range(20):  # 20 files, each one wide window from row 100 on
            _write(
                tmp_path / name / f"s{k}.csv",
                ["timestamp,anomaly_score,anomaly"]
                + [f"{s},{float(j == hit)},{int(j >= 100)}" for j, s in enumerate(stamps)],
            )
    outputs = {}
    for name in ("silent", "early"):
        outcome = CliRunner().invoke(
            anomalies_app,
            ["evaluate", "--data", str(tmp_path / name), "--label-column", "anomaly"],
        )
        assert outcome.exit_code == 0, outcome.output
        outputs[name] = outcome.output.splitlines()
    silent, early = ([line for line in outputs[n] if " chance " in line] for n in outputs)
    assert len(silent) == len(early) == 3  # one per profile, under its line
    # the chance level is the corpus's (same windows, same rows), not the detector's
    assert [line.split("<-")[0].rstrip() for line in silent] == early
    assert all("does not beat chance" in line for line in silent)  # flags nothing: 0
    assert not any("does not beat chance" in line for line in early)  # every window: 100


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a JSON label file"),
        ('["a.csv"]', "expected an object"),
        ('{"m/tiny.csv": [["2024-01-01"]]}', "window 1: expected [start, end]"),
        ('{"m/tiny.csv": [["2024-01-02", "2024-01-01"]]}', "starts after it ends"),
        ('{"m/other.csv": []}', "no file 'm/other.csv'"),
    ],
)
def test_bad_label_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    _write(tmp_path / "d" / "m" / "tiny.csv", ["timestamp,anomaly_score", "2024-01-01,0.5"])
    labels = tmp_path / "labels.json"
    labels.write_text(content)
    outcome = CliRunner().invoke(
        anomalies_app, ["evaluate", "--data", str(tmp_path / "d"), "--labels", str(labels)]
    )
    assert outcome.exit_code == 2
    assert message in outcome.output and "Traceback" not in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1


def test_a_score_that_is_not_a_number_names_file_row_and_column(tmp_path: Path) -> None:
    _write(
        tmp_path / "d" / "f.csv",
        ["timestamp,anomaly_score,anomaly", "2024-01-01,0.1,0", "2024-01-02,high,1"],
    )
    outcome = CliRunner().invoke(
        anomalies_app, ["evaluate", "--data", str(tmp_path / "d"), "--label-column", "anomaly"]
    )
    assert outcome.exit_code == 2
    assert "f.csv: row 3: column 'anomaly_score': 'high' is not a number" in outcome.output
