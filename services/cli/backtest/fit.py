"""`revops backtest deals --fit`: learn the overall rubric's weights from history.

The overall deal_quality score is a weighted sum of the four sub-scores (deal_quality.yaml).
A logistic regression of won/lost on the sub-scores, as they were on each deal's scoring
date, gives the weights history supports (negative ones are set to 0: a rubric weight
cannot be negative; scaled to the rubric's total). It is judged out of sample and in time
order: deals sorted by scoring date, each fold learns on the deals before it and is scored
on the next ones (scikit-learn's TimeSeriesSplit), and the fitted weights' AUC on those
later deals is compared with the hand-set weights' AUC on the same deals (the lift, with a
paired bootstrap interval). The rubric is not changed; `--write-fitted FILE` writes a
deal_quality.yaml with the fitted weights, only when asked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import TimeSeriesSplit

from services.cli.backtest.stats import Interval, bootstrap_aucs
from services.common.rulefiles import load_rule_file
from services.decision_agent.deal_quality.rule_models import (
    BacktestRules,
    OverallRules,
)

FITTED = "fitted weights"
HAND_SET = "hand-set weights"


@dataclass
class FitReport:
    sub_scores: list[str]
    hand_set: dict[str, float]
    fitted: dict[str, float] = field(default_factory=dict)
    folds_used: int = 0
    out_of_fold_deals: int = 0
    auc: dict[str, Interval] = field(default_factory=dict)
    note: str = ""

    @property
    def lift(self) -> Interval | None:
        return self.auc.get(f"{FITTED} - {HAND_SET}")


def _weights(coefficients: np.ndarray, names: Sequence[str], total: float) -> dict[str, float]:
    clipped = np.clip(coefficients, 0.0, None)
    if clipped.sum() <= 0:
        return {n: round(total / len(names), 2) for n in names}
    scaled = clipped / clipped.sum() * total
    weights = {n: round(float(w), 2) for n, w in zip(names, scaled, strict=True)}
    largest = max(weights, key=lambda n: weights[n])  # rounding: keep the exact total
    weights[largest] = round(weights[largest] + total - sum(weights.values()), 2)
    return weights


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    model = LogisticRegression(C=c, max_iter=1000)
    model.fit(x / 100.0, y)
    return np.asarray(model.coef_[0])


def fit_weights(
    sub_scores: dict[str, list[int]],
    won: list[bool],
    order: list[int],
    overall: OverallRules,
    rules: BacktestRules,
) -> FitReport:
    """`sub_scores[name][i]` of deal i; `order`: deal indices by scoring date."""
    names = list(overall.weights)
    report = FitReport(names, dict(overall.weights))
    x = np.array([[sub_scores[n][i] for n in names] for i in order], dtype=float)
    y = np.array([won[i] for i in order], dtype=bool)
    if len(y) < rules.fit.min_train_deals or y.all() or not y.any():
        report.note = (
            f"not enough history to fit: {len(y)} deal(s), {int(y.sum())} won (needs "
            f"{rules.fit.min_train_deals} with both outcomes)"
        )
        return report
    hand = x @ np.array([overall.weights[n] for n in names])
    predicted: list[float] = []
    baseline: list[float] = []
    outcome: list[bool] = []
    splitter = TimeSeriesSplit(n_splits=rules.fit.folds)
    for train, test in splitter.split(x):
        if len(train) < rules.fit.min_train_deals or y[train].all() or not y[train].any():
            continue
        weights = _weights(_fit(x[train], y[train], rules.fit.regularization_c), names, 1.0)
        predicted += list(x[test] @ np.array([weights[n] for n in names]))
        baseline += list(hand[test])
        outcome += list(y[test])
        report.folds_used += 1
    report.fitted = _weights(_fit(x, y, rules.fit.regularization_c), names, overall.total)
    report.out_of_fold_deals = len(outcome)
    if report.folds_used == 0:
        report.note = "no fold had enough earlier deals with both outcomes to learn from"
        return report
    report.auc = bootstrap_aucs(
        {FITTED: predicted, HAND_SET: baseline},
        outcome,
        resamples=rules.bootstrap_resamples,
        confidence=rules.confidence,
        seed=rules.seed,
        versus=HAND_SET,
    )
    return report


def write_fitted(path: Path, overall: OverallRules, weights: dict[str, float]) -> None:
    """A deal_quality.yaml with the fitted weights (same total and bands), validated, written
    whole or not at all."""
    document = {
        "kind": overall.kind,
        "version": overall.version,
        "total": overall.total,
        "weights": weights,
        "bands": [band.model_dump() for band in overall.bands],
    }
    header = "# Fitted by `revops backtest deals --fit` (logistic regression on history).\n"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(header + yaml.safe_dump(document, sort_keys=False))
    try:
        load_rule_file(tmp, OverallRules)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
