"""`revops anomalies score`: one output row per input row, and bad input in one line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from services.decision_agent.anomaly.cli import anomalies_app


def _run(*args: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(anomalies_app, list(args))
    return outcome.exit_code, outcome.output


def _series_rows(n: int = 400) -> list[str]:
    rng = np.random.default_rng(0)
    values = -50 + rng.normal(size=n)  # negative values are valid input
    values[min(300, n - 1)] = -80.0
    return [
        f"2024-01-01T{k // 3600:02d}:{k // 60 % 60:02d}:{k % 60:02d},{v:.4f}"
        for k, v in enumerate(values)
    ]


def test_every_row_is_written_in_place_with_its_value_as_given(tmp_path: Path) -> None:
    rows = _series_rows()
    rows[10] = "2024-01-01T00:00:10,"  # no value
    rows[20] = "2024-01-01T00:00:20,n/a"  # spelled missing
    rows[30] = "yesterday,3"  # unreadable timestamp
    rows[40] = "2024-01-01T00:00:40,abc"  # not a number
    rows[50], rows[51] = rows[51], rows[50]  # out of order
    rows.insert(60, rows[59])  # a repeated timestamp
    source = tmp_path / "in.csv"
    source.write_text("timestamp,value,extra\n" + "\n".join(r + ",x" for r in rows) + "\n")
    target = tmp_path / "out.csv"
    code, output = _run("score", "--input", str(source), "--output", str(target))
    assert code == 0, output
    out = list(csv.reader(target.open()))
    # the input's other column follows the scores, as given
    assert out[0] == ["timestamp", "value", "anomaly_score", "reason", "extra"]
    assert all(r[4] == "x" for r in out[1:])
    assert len(out) == len(rows) + 1
    assert [r[0] for r in out[1:]] == [r.split(",")[0] for r in rows]
    assert [r[1] for r in out[1:]] == [r.split(",")[1] for r in rows]
    assert out[11][2:4] == ["0.000000", "missing_value"]
    assert out[21][3] == "missing_value"
    assert out[31][2:4] == ["0.000000", "invalid_timestamp"]
    assert out[41][2:4] == ["0.000000", "invalid_value"]
    assert out[1][3] == "learning"
    # the dip to -80, on its first point
    assert float(out[302][2]) >= 0.5 and out[302][3] == "jump"
    assert all(0 <= float(r[2]) < 1 for r in out[1:])
    assert "scored" in output and "1 out of time order" in output
    assert "1 repeating an earlier timestamp" in output
    assert "1 with an unreadable timestamp" in output and "2 with no value" in output
    assert "1 with a value that is not a number" in output


def test_semicolon_files_and_other_column_names(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("when;amount\n" + "\n".join(r.replace(",", ";") for r in _series_rows()))
    code, output = _run(
        "score",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.csv"),
        "--timestamp-column",
        "when",
        "--value-column",
        "amount",
    )
    assert code == 0, output
    assert len((tmp_path / "o.csv").read_text().splitlines()) == 401


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"time,amount\n2024-01-01,3\n", "row 1: no column 'timestamp', 'value'"),
        (
            b"timestamp,value\n2024-01-01,a\n2024-01-02,b\n",
            "row 2: column 'value': 'a' is not a number",
        ),
        (
            b"timestamp,value\nmonday,1\ntuesday,2\n",
            "row 2: column 'timestamp': 'monday' is not a timestamp",
        ),
        (b"timestamp,value\n\xff\xfe\x00\x01,3\n", "not UTF-8 text"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    code, output = _run("score", "--input", str(source), "--output", str(tmp_path / "o.csv"))
    assert code == 2
    assert message in output and str(source) in output
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output


def test_unreadable_input_and_output_paths(tmp_path: Path) -> None:
    code, output = _run("score", "--input", str(tmp_path), "--output", str(tmp_path / "o.csv"))
    assert code == 2 and "cannot read" in output
    source = tmp_path / "in.csv"
    source.write_text("timestamp,value\n" + "\n".join(_series_rows(50)))
    code, output = _run("score", "--input", str(source), "--output", str(tmp_path / "no" / "o.csv"))
    assert code == 2 and "cannot write" in output


def test_header_only_file_writes_a_header(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("timestamp,value\n")
    code, output = _run("score", "--input", str(source), "--output", str(tmp_path / "o.csv"))
    assert code == 0, output
    assert (tmp_path / "o.csv").read_text() == "timestamp,value,anomaly_score,reason\n"
    assert "scored 0 of 0 rows" in output


def test_a_label_column_is_kept_for_evaluate(tmp_path: Path) -> None:
    """The README's sequence: score a labelled series into a folder, then evaluate it with
    `--label-column` (the label column must survive scoring)."""
    rows = _series_rows()
    labelled = [f"{r},{int(290 <= k < 320)}" for k, r in enumerate(rows)]
    source = tmp_path / "series.csv"
    source.write_text("timestamp,value,anomaly\n" + "\n".join(labelled) + "\n")
    scored = tmp_path / "scored"
    scored.mkdir()
    code, output = _run("score", "--input", str(source), "--output", str(scored / "series.csv"))
    assert code == 0, output
    out = list(csv.reader((scored / "series.csv").open()))
    assert out[0] == ["timestamp", "value", "anomaly_score", "reason", "anomaly"]
    assert [r[4] for r in out[1:]] == [str(int(290 <= k < 320)) for k in range(len(rows))]
    code, output = _run("evaluate", "--data", str(scored), "--label-column", "anomaly")
    assert code == 0, output
    assert "standard" in output
