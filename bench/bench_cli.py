"""Start-up time of the `revops` command: `revops --help` and `revops insights list` (on a
store of 200 insights), each run N times as a fresh process, as a person would run them.

Run: `.venv/bin/python bench/bench_cli.py [--runs N]`. Target (issue 14): under 0.3 s.
The machine is shared: the minimum is the least disturbed run, the median the typical one;
read the spread, not one figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from contracts import Flag, Subject
from services.common.settings import PROJECT_ROOT
from services.execution_agent.insights import InsightRepository
from services.execution_agent.store import Store

REVOPS = [sys.executable, "-m", "services.cli.main"]
INSIGHTS = 200


def seed_store(path: Path) -> None:
    repo = InsightRepository(Store(path))
    for n in range(INSIGHTS):
        flag = Flag(
            type="risk",
            severity="high" if n % 3 else "critical",
            description="Daily compute down 45% month over month",
            code="usage_decline_mom",
            category="consumption_pattern",
            insight_type="usage_decline",
        )
        repo.upsert_from_flag(Subject(account_id=f"001{n:012d}"), flag, f"bench-{n}")


def timed(args: list[str], env: dict[str, str], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*REVOPS, *args], env=env, cwd=PROJECT_ROOT, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "revops.db"
        seed_store(db)
        env = {**os.environ, "REVOPS_INSIGHTS_DB": str(db), "COLUMNS": "160"}
        figures = {}
        for label, command in (
            ("revops --help", ["--help"]),
            ("revops insights list", ["insights", "list", "--limit", "100"]),
        ):
            timed(command, env, 2)  # warm the file cache
            runs = timed(command, env, args.runs)
            figures[label] = {
                "runs": args.runs,
                "min_s": round(min(runs), 3),
                "median_s": round(statistics.median(runs), 3),
                "max_s": round(max(runs), 3),
            }
            print(f"{label} median: {statistics.median(runs):.3f} s")
            print(f"{label} min: {min(runs):.3f} s")
    print(json.dumps({"cli_startup": figures}))


if __name__ == "__main__":
    main()
