"""Anomaly windows for the evaluation harness: from a label file or from a label column.

Label file (the common format of streaming-detector benchmarks): a JSON object mapping each
data file's path (relative to the data directory, `/`-separated) to a list of windows, each
``[start, end]`` as timestamps (ISO text or epoch seconds), both ends included:

    {"machine/temp.csv": [["2014-02-07 10:00:00", "2014-02-09 02:00:00"]], "web/ok.csv": []}

Label column (e.g. SKAB's ``anomaly``): a row is labelled when the column is non-zero, and
every maximal run of consecutive labelled rows is one anomalous period (one event). Its
window starts at the event's onset - the period's first row, or its first row marked in an
onset column such as SKAB's ``changepoint`` - (a detection before it is a false alarm) and is
as wide as NAB's window budget allows: 10 % of the series' rows shared equally by its
periods, never past the period's last row. Sizing windows by the whole period instead would
make them a third of a SKAB file, where a detector that fires at random on one row in 200
lands in nearly every window early (it scores about 70 of 100 on SKAB that way); with the
budget the score measures how soon after the onset a detector reacts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.decision_agent.anomaly.evaluation import Window
from services.decision_agent.anomaly.table import InputError, parse_timestamp

Span = tuple[float, float]


WINDOW_BUDGET = 0.10  # share of a series' rows covered by its windows (NAB's budget)


def windows_from_flags(
    flags: NDArray[np.float64],
    budget: float = WINDOW_BUDGET,
    onsets: NDArray[np.float64] | None = None,
) -> tuple[Window, ...]:
    """One window per labelled event: per maximal run of non-zero (and non-missing) flags.

    The window starts at the event's onset - the first row of the run flagged in `onsets`
    (e.g. SKAB's `changepoint` column), else the run's first row - and is `budget` x rows /
    events wide (at least one row), cut at the run's last row. A detection before the onset
    is a false alarm: the onset is when the event began, not an estimate around it.
    """
    on = np.nan_to_num(np.asarray(flags, dtype=np.float64)) != 0
    edges = np.diff(np.concatenate([[False], on, [False]]).astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    if len(starts) == 0:
        return ()
    marked = (
        np.flatnonzero(np.nan_to_num(np.asarray(onsets, dtype=np.float64)) != 0)
        if onsets is not None
        else np.zeros(0, dtype=np.int64)
    )
    width = max(1, int(budget * len(on) / len(starts)))
    windows = []
    for s, e in zip(starts, ends, strict=True):
        inside = marked[(marked >= s) & (marked <= e)]
        onset = int(inside[0]) if len(inside) else int(s)
        windows.append(Window(onset, min(int(e), onset + width - 1)))
    return tuple(windows)


def windows_from_spans(times_s: NDArray[np.float64], spans: list[Span]) -> tuple[Window, ...]:
    """Rows whose timestamp lies in each span (spans that hold no row are left out)."""
    windows = []
    for lo, hi in spans:
        inside = np.flatnonzero((times_s >= lo) & (times_s <= hi))
        if len(inside):
            windows.append(Window(int(inside[0]), int(inside[-1])))
    return tuple(windows)


def _span(path: Path, key: str, k: int, item: Any) -> Span:
    where = f"{path}: {key!r} window {k + 1}"
    if not isinstance(item, list) or len(item) != 2:
        raise InputError(f"{where}: expected [start, end], got {json.dumps(item)}")
    ends = [parse_timestamp(str(x)) for x in item]
    if any(np.isnan(e) for e in ends):
        raise InputError(f"{where}: {json.dumps(item)} holds an unreadable timestamp")
    if ends[0] > ends[1]:
        raise InputError(f"{where}: starts after it ends ({item[0]} > {item[1]})")
    return ends[0], ends[1]


def load_label_file(path: Path) -> dict[str, list[Span]]:
    """{relative data path: [(start_s, end_s), ...]} from a JSON label file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON label file: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object mapping data files to window lists")
    labels: dict[str, list[Span]] = {}
    for key, items in data.items():
        if not isinstance(items, list):
            raise InputError(f"{path}: {key!r}: expected a list of [start, end] windows")
        labels[key.replace("\\", "/")] = [_span(path, key, k, x) for k, x in enumerate(items)]
    return labels
