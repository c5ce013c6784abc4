"""Every area benchmark `make bench` runs starts the way it runs it: its imports resolve and
its options parse (`--help`). Two of them once failed at their first import on every run,
and the run went on to print a table without them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.run_all import area_benches, area_command, failed_areas
from services.common.settings import PROJECT_ROOT


def test_every_area_benchmark_starts_as_make_bench_runs_it(tmp_path: Path) -> None:
    commands = {
        name: area_command([argv[0], "--help"])
        for name, argv in area_benches(False, tmp_path).items()
    }
    running = {
        name: subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, command in commands.items()
    }
    failed = {}
    for name, proc in running.items():
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0 or "usage:" not in out:
            failed[name] = err.strip().splitlines()[-3:]
    assert failed == {}


def test_a_failed_area_is_named() -> None:
    results = {"areas": {"a": {"exit_code": 0}, "b": {"exit_code": 1}, "c": {"exit_code": -9}}}
    assert failed_areas(results) == ["b", "c"]
    assert failed_areas({}) == []
