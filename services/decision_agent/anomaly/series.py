"""One (timestamp, value) series through the detector: every input row gets a score.

Input rules (each applied row is counted in `InputSummary`):

* a row whose timestamp cannot be read keeps its place with score 0 and reason
  ``invalid_timestamp`` (it cannot be put in time order);
* a row whose value cell is empty (or NaN/NA/null) is a gap: score 0, reason
  ``missing_value``; the detector skips it;
* a row whose value cell is not a number: score 0, reason ``invalid_value``;
* rows are scored in timestamp order; rows out of order in the file are counted;
* rows sharing a timestamp with an earlier row are scored as the next points, in file
  order (nothing valid is dropped), and counted;
* points before the detector has enough history: score 0, reason ``learning``.

Every other row has its score in [0, 1) and reason ``none`` or, from the alert score 0.5,
the kind of surprise (``jump``, ``level_shift``, ``spread_change``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.decision_agent.anomaly.detector import (
    ALERT_SCORE,
    KIND_LABELS,
    LEARNING,
    DetectorSettings,
    score_stream,
)

INVALID_TIMESTAMP = "invalid_timestamp"
MISSING_VALUE = "missing_value"
INVALID_VALUE = "invalid_value"
UNSCORED = frozenset({INVALID_TIMESTAMP, MISSING_VALUE, INVALID_VALUE, KIND_LABELS[LEARNING]})


@dataclass(frozen=True)
class InputSummary:
    rows: int
    scored: int
    invalid_timestamp: int
    missing_value: int
    invalid_value: int
    out_of_order: int
    duplicate_timestamp: int
    learning: int
    alerts: int

    def line(self) -> str:
        applied = [
            f"{count} {label}"
            for count, label in (
                (self.invalid_timestamp, "with an unreadable timestamp (score 0)"),
                (self.missing_value, "with no value (score 0)"),
                (self.invalid_value, "with a value that is not a number (score 0)"),
                (self.out_of_order, "out of time order (scored in time order)"),
                (self.duplicate_timestamp, "repeating an earlier timestamp (scored in file order)"),
                (self.learning, "before enough history (score 0)"),
            )
            if count
        ]
        rules = f"; rows {', '.join(applied)}" if applied else ""
        return (
            f"scored {self.scored} of {self.rows} rows{rules}; "
            f"{self.alerts} at or above {ALERT_SCORE}"
        )


@dataclass(frozen=True)
class SeriesScores:
    """One entry per input row, in input order."""

    score: NDArray[np.float64]
    likelihood: NDArray[np.float64]
    reason: list[str]
    summary: InputSummary


def _out_of_order(times_in_file_order: NDArray[np.float64]) -> int:
    """Rows earlier than a row above them in the file."""
    if len(times_in_file_order) < 2:
        return 0
    latest_before = np.maximum.accumulate(times_in_file_order)[:-1]
    return int(np.sum(times_in_file_order[1:] < latest_before))


def score_series(
    times_s: NDArray[np.float64],
    values: NDArray[np.float64],
    invalid_value: NDArray[np.bool_] | None = None,
    settings: DetectorSettings | None = None,
) -> SeriesScores:
    """Score every row: `times_s` epoch seconds (NaN = unreadable), `values` (NaN = no
    value), `invalid_value` marks rows whose value cell held text that is not a number."""
    times_s = np.asarray(times_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    bad_value = np.zeros(n, bool) if invalid_value is None else np.asarray(invalid_value, bool)
    timed = np.flatnonzero(~np.isnan(times_s))
    order = timed[np.argsort(times_s[timed], kind="stable")]
    stream = score_stream(values[order], settings)
    score = np.zeros(n)
    likelihood = np.zeros(n)
    score[order] = stream.score
    likelihood[order] = stream.likelihood
    kind = np.full(n, LEARNING, dtype=np.int8)
    kind[order] = stream.kind
    reason = [
        KIND_LABELS[k] if (s >= ALERT_SCORE or k == LEARNING) else "none"
        for k, s in zip(kind.tolist(), score.tolist(), strict=True)
    ]
    missing = np.isnan(values) & ~bad_value
    for rows, label in (
        (np.flatnonzero(missing), MISSING_VALUE),
        (np.flatnonzero(bad_value), INVALID_VALUE),
        (np.flatnonzero(np.isnan(times_s)), INVALID_TIMESTAMP),
    ):
        for row in rows.tolist():
            reason[row] = label
            score[row] = likelihood[row] = 0.0
    sorted_times = times_s[order]
    summary = InputSummary(
        rows=n,
        scored=sum(r not in UNSCORED for r in reason),
        invalid_timestamp=int(np.isnan(times_s).sum()),
        missing_value=int((missing & ~np.isnan(times_s)).sum()),
        invalid_value=int((bad_value & ~np.isnan(times_s)).sum()),
        out_of_order=_out_of_order(times_s[timed]),
        duplicate_timestamp=int(np.sum(sorted_times[1:] == sorted_times[:-1])),
        learning=reason.count(KIND_LABELS[LEARNING]),
        alerts=int(np.sum(score >= ALERT_SCORE)),
    )
    return SeriesScores(score, likelihood, reason, summary)
