"""`revops warehouse seed | accounts | opportunities` through the Typer app."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from demo.seed import ground_truth_path, load_ground_truth
from services.cli.warehouse import warehouse_app


def test_seed_then_list(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    runner = CliRunner()
    seeded = runner.invoke(
        warehouse_app,
        ["seed", "--accounts", "12", "--seed", "5", "--as-of", "2025-06-30", "--path", str(path)],
    )
    assert seeded.exit_code == 0, seeded.output
    assert "consumption_daily_f" in seeded.output and "4,380" in seeded.output
    assert "warehouse seed: 12 accounts in " in seeded.stderr  # progress (plain: not a terminal)
    truth = load_ground_truth(ground_truth_path(path))

    accounts = runner.invoke(warehouse_app, ["accounts", "--limit", "5", "--path", str(path)])
    lines = accounts.output.strip().splitlines()
    assert lines[0].split("\t")[0] == "sf_account_id" and len(lines) == 6
    assert lines[1].split("\t")[0] == sorted(truth["accounts"])[0]

    opps = runner.invoke(
        warehouse_app, ["opportunities", "--open", "--limit", "100", "--path", str(path)]
    )
    rows = [line.split("\t") for line in opps.output.strip().splitlines()[1:]]
    expected = sorted(o for o, t in truth["opportunities"].items() if t["is_open"])
    assert [r[0] for r in rows] == expected


def test_bad_date_and_missing_warehouse(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(warehouse_app, ["seed", "--as-of", "June", "--path", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "not a date" in bad.output
    missing = runner.invoke(warehouse_app, ["accounts", "--path", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
