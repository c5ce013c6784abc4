"""`revops anomalies score | evaluate`.

Only typer is imported at module level: numpy, numba and the detector are imported inside
the commands, so `revops --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

anomalies_app = typer.Typer(
    help="General anomaly detector for time series, and its window-based evaluation.",
    no_args_is_help=True,
)

SCORE_HELP = """Score every row of a timestamp,value CSV (comma or semicolon separated).

Writes timestamp,value,anomaly_score,reason and then the input's other columns as given (a
label column stays for `evaluate --label-column`): one row per input row, in input order. The
score is a calibrated anomaly likelihood in [0, 1): lambda / (lambda + 5) with lambda =
-log10 of how improbable the recent behaviour is under what the series showed before, so
0.5 means one in 100,000 and one threshold serves every series. Each event is scored high
once, on its first points.

Timestamps: ISO 8601 dates or date-times (no zone = UTC) or epoch seconds. Rules, each
counted in the summary line: an unreadable timestamp, an empty value or a value that is not
a number keeps its row with score 0 and reason invalid_timestamp / missing_value /
invalid_value; rows are scored in time order, rows with the same timestamp in file order;
the first points (too little history) get score 0, reason learning. A file without the
columns, an empty file or a value column without any number is an error."""

EVALUATE_HELP = """Window-based score of a detector's output against labelled windows.

Reads every CSV under --data holding a score column (default anomaly_score), and the
windows either from a JSON label file (--labels: {"relative/path.csv": [[start, end],
...]}, timestamps) or from a label column of the same files (--label-column, e.g. SKAB's
anomaly: one window from each labelled run's first row, 10 % of the rows shared by the runs).
Prints, per cost profile, the normalized score (0 = flagging nothing, 100 = every window
on its first row) at the one threshold that is best for the whole corpus (or --threshold),
event precision and recall, mean detection delay (rows) and false alarms per 1,000 rows,
and under it the chance level: the score random scores reach on the same files at their own
best threshold (mean of 5 seeded draws), marked when the detector does not beat it.
The first 15 % of each file (at most 750 rows) is a probation period and is not scored."""


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@anomalies_app.command("score", help=SCORE_HELP)
def score_command(
    input_path: Annotated[Path, typer.Option("--input", help="CSV with the series.")],
    output_path: Annotated[Path, typer.Option("--output", dir_okay=False)],
    timestamp_column: Annotated[str, typer.Option("--timestamp-column")] = "timestamp",
    value_column: Annotated[str, typer.Option("--value-column")] = "value",
) -> None:
    from services.decision_agent.anomaly.scoring_io import score_file
    from services.decision_agent.anomaly.table import InputError

    try:
        summary = score_file(input_path, output_path, timestamp_column, value_column)
    except InputError as exc:
        _fail(str(exc))
    else:
        typer.echo(f"{input_path}: {summary.line()}", err=True)


@anomalies_app.command("evaluate", help=EVALUATE_HELP)
def evaluate_command(
    data: Annotated[Path, typer.Option("--data", help="Folder of scored CSV files.")],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="JSON label file (windows per file).")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option("--label-column", help="Column marking anomalous rows.")
    ] = None,
    score_column: Annotated[str, typer.Option("--score-column")] = "anomaly_score",
    timestamp_column: Annotated[str, typer.Option("--timestamp-column")] = "timestamp",
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", help="standard, reward_low_fp, reward_low_fn (default all)."),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Use this threshold, do not sweep.")
    ] = None,
) -> None:
    from services.decision_agent.anomaly.evaluation import PROFILES
    from services.decision_agent.anomaly.scoring_io import evaluation_report, load_corpus
    from services.decision_agent.anomaly.table import InputError

    if (labels is None) == (label_column is None):
        _fail("give exactly one of --labels FILE or --label-column NAME")
    unknown = sorted(set(profile or []) - set(PROFILES))
    if unknown:
        _fail(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(PROFILES)}")
    try:
        corpus = load_corpus(data, labels, label_column, score_column, timestamp_column)
    except InputError as exc:
        _fail(str(exc))
    else:
        for line in corpus.notes:
            typer.echo(line, err=True)
        typer.echo(evaluation_report(corpus.series, profile or list(PROFILES), threshold))
