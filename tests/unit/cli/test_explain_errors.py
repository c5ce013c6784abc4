"""`revops explain ...` on bad input: one line on stderr that says what to do, no traceback,
and no analysis computed for days after the warehouse's data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.common.settings import get_settings
from services.data_agent.warehouse.generator.seed import seed_warehouse

AS_OF = date(2026, 3, 31)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("explain") / "demo.duckdb"
    seed_warehouse(path, accounts=12, days=120, seed=7, as_of=AS_OF)
    return path


@pytest.fixture
def use_warehouse(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("REVOPS_WAREHOUSE_PATH", str(warehouse))
    get_settings.cache_clear()
    yield warehouse
    get_settings.cache_clear()


def explain(*args: str):
    return CliRunner().invoke(app, ["explain", *args], env={"COLUMNS": "200"})


def one_line_error(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_unknown_account_and_deal_say_where_to_find_ids(use_warehouse: Path) -> None:
    line = one_line_error(explain("account", "999"))
    assert "unknown account '999'" in line and "revops warehouse accounts" in line
    line = one_line_error(explain("deal", "999"))
    assert "unknown opportunity '999'" in line and "revops warehouse opportunities" in line


@pytest.mark.parametrize("command", ["account 001000000000001", "deal 006000000000005"])
def test_a_day_that_is_not_a_date_is_refused_in_one_line(use_warehouse: Path, command) -> None:
    line = one_line_error(explain(*command.split(), "--as-of", "2026-13-01"), code=2)
    assert "--as-of '2026-13-01' is not a day" in line and "YYYY-MM-DD" in line


@pytest.mark.parametrize("command", ["account 001000000000001", "deal 006000000000005"])
def test_a_day_after_the_data_is_refused_not_computed(use_warehouse: Path, command) -> None:
    line = one_line_error(explain(*command.split(), "--as-of", "2030-01-01"))
    assert "after the warehouse's data, which ends on 2026-03-31" in line
    within = explain(*command.split(), "--as-of", "2026-03-31", "--json")
    assert within.exit_code == 0, within.output


def test_missing_warehouse_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVOPS_WAREHOUSE_PATH", str(tmp_path / "none.duckdb"))
    get_settings.cache_clear()
    try:
        line = one_line_error(explain("account", "001000000000001"))
    finally:
        get_settings.cache_clear()
    assert "revops warehouse seed" in line
