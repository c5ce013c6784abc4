"""Benchmark: the anomaly detector next to baselines, on real and generated series.

Run: .venv/bin/python bench/bench_anomaly.py [--detectors ours windowed_gaussian ...]
     [--generator-accounts 120] [--markdown]

Corpora (bench/anomaly_corpora.py): SKAB (every channel of every labelled file, windows
from its `anomaly` column), SKAB's anomaly-free run and real series shipped in statsmodels
and river (false alarms per 1,000 points at the threshold chosen on SKAB), the usage
generator's ground truth. Each detector is scored with the window-based method of
services/decision_agent/anomaly/evaluation.py: one threshold per corpus and profile.
Printed: window score per corpus and profile, event precision and recall, mean delay
(rows), false alarms per 1,000 scored rows, points/s (one process, CPU time; the machine
is shared, so take speeds as a range). Then the transfer check: the threshold chosen on
SKAB valve1 applied to valve2 and other.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import anomaly_baselines as baselines
from bench.anomaly_corpora import (
    Series,
    generator_series,
    package_series,
    skab,
    skab_anomaly_free,
)
from services.decision_agent.anomaly.evaluation import (
    PROFILES,
    CorpusResult,
    LabelledScores,
    evaluate,
)

Detector = Callable[[Series], np.ndarray]


def ours(series: Series) -> np.ndarray:
    from services.decision_agent.anomaly.detector import score_stream

    return score_stream(series.values).score


DETECTORS: dict[str, Detector] = {
    "ours": ours,
    "windowed_gaussian": lambda s: baselines.windowed_gaussian(s.values),
    "half_space_trees": lambda s: baselines.half_space_trees(s.values),
    "matrix_profile": lambda s: baselines.matrix_profile(s.values),
    "random (chance)": lambda s: baselines.random_scores(s.values, s.name),
}


@dataclass
class Scored:
    corpus: list[LabelledScores]
    points: int
    cpu_s: float


def run(detector: Detector, series: list[Series]) -> Scored:
    start = time.process_time()
    scored = [LabelledScores(s.name, np.asarray(detector(s), float), s.windows) for s in series]
    return Scored(scored, sum(len(s.values) for s in series), time.process_time() - start)


def _f(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def row(name: str, corpus: str, results: dict[str, CorpusResult], speed: float) -> str:
    std = results["standard"]
    scores = " | ".join(_f(results[p].normalized) for p in PROFILES)
    return (
        f"| {name} | {corpus} | {scores} | {_f(std.precision, 2)} | {_f(std.recall, 2)} | "
        f"{_f(std.mean_delay)} | {_f(std.false_alarms_per_1000, 2)} | {speed:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--detectors", nargs="*", default=list(DETECTORS))
    parser.add_argument("--generator-accounts", type=int, default=120)
    args = parser.parse_args()

    corpora = {"SKAB": skab(), "generator": generator_series(args.generator_accounts)}
    quiet = {"SKAB anomaly-free": skab_anomaly_free(), "PyPI-shipped series": package_series()}
    print(
        "| detector | corpus | score standard | reward_low_fp | reward_low_fn | precision | "
        "recall | mean delay (rows) | false alarms / 1,000 | points/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    figures: dict[str, dict[str, float]] = {}
    transfer: list[str] = []
    for name in args.detectors:
        detector = DETECTORS[name]
        skab_threshold = math.inf
        for corpus_name, series in corpora.items():
            scored = run(detector, series)
            speed = scored.points / max(scored.cpu_s, 1e-9)
            results = {p: evaluate(scored.corpus, PROFILES[p]) for p in PROFILES}
            print(row(name, corpus_name, results, speed), flush=True)
            figures[f"{name} {corpus_name}"] = {
                "score": round(results["standard"].normalized, 1),
                "points_per_s": round(speed),
            }
            if corpus_name == "SKAB":
                skab_threshold = results["standard"].threshold
                transfer.append(transfer_line(name, scored.corpus))
        for corpus_name, series in quiet.items():
            scored = run(detector, series)
            speed = scored.points / max(scored.cpu_s, 1e-9)
            at = evaluate(scored.corpus, PROFILES["standard"], skab_threshold)
            print(
                f"| {name} | {corpus_name} (at the SKAB threshold) | | | | | | | "
                f"{_f(at.false_alarms_per_1000, 2)} | {speed:,.0f} |",
                flush=True,
            )
            figures[f"{name} {corpus_name}"] = {
                "false_alarms_per_1000": round(at.false_alarms_per_1000, 2)
            }
    print()
    print(
        "| detector | threshold chosen on SKAB valve1 (its score) | valve2 at it (own best) | "
        "other at it (own best) |"
    )
    print("|---|---|---|---|")
    for line in transfer:
        print(line)
    print(json.dumps({"anomaly_benchmark": figures}))


def transfer_line(name: str, corpus: list[LabelledScores]) -> str:
    """Is one setting chosen on valve1 good on the other subsets? (standard profile)"""

    def part(subset: str) -> list[LabelledScores]:
        return [s for s in corpus if f"/{subset}/" in s.name]

    standard = PROFILES["standard"]
    chosen = evaluate(part("valve1"), standard)
    cells = [f"{chosen.threshold:.4g} ({chosen.normalized:.1f})"]
    for subset in ("valve2", "other"):
        at = evaluate(part(subset), standard, chosen.threshold)
        own = evaluate(part(subset), standard)
        cells.append(f"{at.normalized:.1f} ({own.normalized:.1f})")
    return f"| {name} | " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
