"""`bench/bench_dataset_wire.py` runs and measures what it says (sizes only: timings are
printed, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from services.common.settings import PROJECT_ROOT


def test_bench_prints_rows_and_columns_figures() -> None:
    tiny = ["--accounts", "2", "--deals", "2", "--repeats", "1"]
    proc = subprocess.run(
        [sys.executable, "bench/bench_dataset_wire.py", *tiny],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])["dataset_wire"]
    assert set(summary) == {"consumption", "deal_quality"}
    for figures in summary.values():
        # a year of usage as columns is well under half of its rows
        assert figures["bytes, columns"] < 0.6 * figures["bytes, rows"]
        assert figures["parse + read per hop, columns, us"] > 0
    assert "columns / rows, parse + read per hop" in proc.stdout
