"""Files in and out of the CLI: score one CSV file, load a scored corpus, print a report."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.decision_agent.anomaly.evaluation import (
    CHANCE_DRAWS,
    PROFILES,
    CorpusResult,
    LabelledScores,
    Window,
    chance_levels,
    evaluate,
)
from services.decision_agent.anomaly.labels import (
    load_label_file,
    windows_from_flags,
    windows_from_spans,
)
from services.decision_agent.anomaly.series import InputSummary, score_series
from services.decision_agent.anomaly.table import (
    InputError,
    Table,
    numeric_column,
    parse_timestamp,
    read_table,
)

#: What `score_file` writes first, in this order (the input's other columns follow).
SCORED_COLUMNS = ("timestamp", "value", "anomaly_score", "reason")


def timestamps(table: Table, column: str) -> np.ndarray:
    return np.array([parse_timestamp(cell) for cell in table.column(column)], dtype=np.float64)


def score_file(
    input_path: Path, output_path: Path, timestamp_column: str, value_column: str
) -> InputSummary:
    table = read_table(input_path)
    table.require(timestamp_column, value_column)
    times = timestamps(table, timestamp_column)
    if len(times) and np.isnan(times).all():
        first = table.column(timestamp_column)[0]
        raise InputError(
            f"{input_path}: row 2: column {timestamp_column!r}: {first!r} is not a timestamp "
            "(no row of the column holds one)"
        )
    values, bad_rows = numeric_column(table, value_column)
    invalid = np.zeros(len(values), dtype=bool)
    invalid[bad_rows] = True
    result = score_series(times, values, invalid)
    stamps, raw = table.column(timestamp_column), table.column(value_column)
    # The input's other columns follow, as given: a label column stays beside the scores, so
    # `evaluate --label-column` reads the scored file.
    written = {timestamp_column, value_column, *SCORED_COLUMNS}
    carried = [name for name in table.header if name not in written]
    extra = [table.column(name) for name in carried]
    try:
        with Path(output_path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow([*SCORED_COLUMNS, *carried])
            for k in range(len(values)):
                writer.writerow(
                    [
                        stamps[k],
                        raw[k],
                        f"{result.score[k]:.6f}",
                        result.reason[k],
                        *(column[k] for column in extra),
                    ]
                )
    except OSError as exc:
        raise InputError(f"{output_path}: cannot write: {exc.strerror or exc}") from None
    return result.summary


@dataclass
class Corpus:
    series: list[LabelledScores]
    notes: list[str] = field(default_factory=list)


def _numbers(table: Table, column: str) -> np.ndarray:
    """A column in which every non-empty cell must be a number (scores, labels)."""
    table.require(column)
    values, bad = numeric_column(table, column)
    if bad:
        cell = table.column(column)[bad[0]]
        raise InputError(
            f"{table.path}: row {bad[0] + 2}: column {column!r}: {cell!r} is not a number"
        )
    return values


def _scored(path: Path, score_column: str) -> tuple[Table, np.ndarray]:
    table = read_table(path)
    return table, np.nan_to_num(_numbers(table, score_column), nan=-np.inf)


def load_corpus(
    data: Path,
    labels: Path | None,
    label_column: str | None,
    score_column: str,
    timestamp_column: str,
) -> Corpus:
    if not Path(data).is_dir():
        raise InputError(f"{data}: not a folder")
    files = {p.relative_to(data).as_posix(): p for p in sorted(Path(data).rglob("*.csv"))}
    corpus = Corpus([])
    if labels is not None:
        spans = load_label_file(labels)
        missing = sorted(set(spans) - set(files))
        if missing:
            raise InputError(f"{labels}: no file {missing[0]!r} under {data}")
        unlabelled = sorted(set(files) - set(spans))
        if unlabelled:
            corpus.notes.append(
                f"{len(unlabelled)} file(s) under {data} have no entry in {labels} and are "
                f"not scored, e.g. {unlabelled[0]}"
            )
        for relative in sorted(spans):
            table, scores = _scored(files[relative], score_column)
            table.require(timestamp_column)
            times = timestamps(table, timestamp_column)
            windows = windows_from_spans(times, spans[relative])
            if len(windows) < len(spans[relative]):
                corpus.notes.append(
                    f"{relative}: {len(spans[relative]) - len(windows)} window(s) hold no row"
                )
            corpus.series.append(LabelledScores(relative, scores, windows))
    else:
        assert label_column is not None
        for relative, path in files.items():
            table, scores = _scored(path, score_column)
            flags = _numbers(table, label_column)
            corpus.series.append(LabelledScores(relative, scores, windows_from_flags(flags)))
    if not corpus.series:
        raise InputError(f"{data}: no CSV file to evaluate")
    return corpus


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def report_line(result: CorpusResult) -> str:
    threshold = "none (flag nothing)" if math.isinf(result.threshold) else f"{result.threshold:.6g}"
    return (
        f"{result.profile.name:<14} score {result.normalized:6.1f}  threshold {threshold:<12} "
        f"windows {result.detected}/{result.windows}  precision {_num(result.precision, 2)}  "
        f"recall {_num(result.recall, 2)}  mean delay {_num(result.mean_delay)} rows  "
        f"false alarms {_num(result.false_alarms_per_1000, 2)} per 1,000 rows"
    )


def evaluation_report(
    series: Sequence[LabelledScores], profiles: Sequence[str], threshold: float | None
) -> str:
    windows: list[Window] = [w for s in series for w in s.windows]
    head = f"{len(series)} file(s), {len(windows)} labelled window(s)"
    chance = chance_levels(series, [PROFILES[name] for name in profiles])
    lines = [head]
    for name in profiles:
        result = evaluate(series, PROFILES[name], threshold)
        lines += [report_line(result), chance_line(result, chance[name])]
    return "\n".join(lines)


def chance_line(result: CorpusResult, chance: float) -> str:
    """What random scores reach on the same corpus: on a corpus of wide windows flagging at
    random can score well, and a detector's figure means little until it beats this one."""
    verdict = "  <- the detector does not beat chance here" if result.normalized <= chance else ""
    return (
        f"{'':<14} chance {chance:6.1f}  (random scores at their own best threshold, "
        f"mean of {CHANCE_DRAWS} draws){verdict}"
    )
