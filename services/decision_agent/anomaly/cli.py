"""`revops anomalies score`: score a `timestamp,value` CSV file.

Timestamps: ISO 8601 (a date, or a date-time; no zone = UTC) or epoch seconds.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from services.decision_agent.anomaly.config import DetectorConfig
from services.decision_agent.anomaly.series import SeriesError, score_series

anomalies_app = typer.Typer(help="General anomaly detector for time series.", no_args_is_help=True)

INPUT_RULES = """Input rules: rows with a missing/unparsable timestamp or a non-finite value are
dropped (reason dropped_invalid); negative values are clipped to 0; repeated timestamps keep
the first row (later ones: reason dropped_duplicate); points without enough earlier history get
score 0 and reason not_enough_history. Every input row is written out, in input order, with
its value as given."""


def parse_timestamp(text: str) -> float:
    """Epoch seconds (UTC) of an ISO date/date-time or a number; NaN when unparsable."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return math.nan
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_holidays(path: Path | None) -> list[date]:
    if path is None:
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [date.fromisoformat(line.strip()) for line in lines if line.strip()]


@anomalies_app.callback()
def _group() -> None:
    """Keeps `score` a sub-command even while it is the only one."""


@anomalies_app.command("score", help=f"Score every row of a timestamp,value CSV.\n\n{INPUT_RULES}")
def score_command(
    input_path: Annotated[Path, typer.Option("--input", exists=True, dir_okay=False)],
    output_path: Annotated[Path, typer.Option("--output", dir_okay=False)],
    holidays: Annotated[
        Path | None, typer.Option("--holidays", help="File with one ISO date per line.")
    ] = None,
    step_s: Annotated[
        int | None, typer.Option("--step-seconds", help="Grid step; default: inferred.")
    ] = None,
) -> None:
    with input_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"timestamp", "value"} - set(reader.fieldnames or [])
        if missing:
            typer.echo(f"error: {input_path} lacks column(s) {sorted(missing)}", err=True)
            raise typer.Exit(2)
        rows = [(row["timestamp"] or "", row["value"] or "") for row in reader]
    times = np.array([parse_timestamp(t) for t, _ in rows], dtype=np.float64)
    values = np.array([parse_value(v) for _, v in rows], dtype=np.float64)
    cfg = DetectorConfig(holidays=read_holidays(holidays))
    try:
        result = score_series(times, values, cfg, step_s=step_s)
    except SeriesError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    with output_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score", "reason"])
        for (stamp, raw), score, reason in zip(rows, result.score, result.reason, strict=True):
            writer.writerow([stamp, raw, "" if math.isnan(score) else f"{score:.4f}", reason])
    dropped = len(result.clean.dropped)
    alerts = int(np.sum(result.score >= cfg.alert_score))
    typer.echo(
        f"scored {len(rows) - dropped} of {len(rows)} rows (dropped {dropped}, "
        f"clipped {result.clean.clipped} negative); {alerts} at or above {cfg.alert_score}; "
        f"grid step {result.step_s}s",
        err=True,
    )
