"""`load_directory` / `revops warehouse load`: all or nothing, errors name file/row/column."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from services.data_agent.warehouse.cli import warehouse_app
from services.data_agent.warehouse.loader import LoadError, load_directory

from .conftest import Demo

Rows = list[list[str]]
SMALL = ("salesforce_account_d", "opportunity_d", "gong_call_f", "warehouse_meta")


@pytest.fixture(scope="module")
def export(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few generated tables exported as CSV, plus usage as Parquet."""
    folder = tmp_path_factory.mktemp("export")
    con = demo.warehouse.connection
    for name in SMALL:
        con.execute(f"COPY {name} TO '{folder / (name + '.csv')}' (HEADER)")
    con.execute(
        f"COPY (SELECT * FROM consumption_daily_f WHERE sf_account_id < '001000000000005') "
        f"TO '{folder / 'consumption_daily_f.parquet'}' (FORMAT parquet)"
    )
    return folder


def count(path: Path, table: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def copy_with(export: Path, tmp: Path, table: str, edit: Callable[[Rows], Rows]) -> Path:
    """Copy the export and apply `edit` to the parsed CSV rows of `table` (header first)."""
    folder = tmp / "src"
    shutil.copytree(export, folder)
    path = folder / f"{table}.csv"
    rows = list(csv.reader(io.StringIO(path.read_text())))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(edit(rows))
    path.write_text(buf.getvalue())
    return folder


def drop_column(name: str) -> Callable[[Rows], Rows]:
    def edit(rows: Rows) -> Rows:
        i = rows[0].index(name)
        return [r[:i] + r[i + 1 :] for r in rows]

    return edit


def set_cell(row: int, name: str, value: str) -> Callable[[Rows], Rows]:
    def edit(rows: Rows) -> Rows:
        rows[row][rows[0].index(name)] = value
        return rows

    return edit


def duplicate_row(row: int) -> Callable[[Rows], Rows]:
    return lambda rows: [*rows, rows[row]]


def test_round_trip(demo: Demo, export: Path, tmp_path: Path) -> None:
    dest = tmp_path / "wh.duckdb"
    counts = load_directory(export, dest)
    for name in SMALL:
        assert counts[name] == demo.sql(f"SELECT COUNT(*) FROM {name}")[0][0]
    assert counts["consumption_daily_f"] == 5 * 365
    con = duckdb.connect(str(dest), read_only=True)
    original = demo.sql("SELECT * FROM opportunity_d ORDER BY opportunity_id")
    assert con.execute("SELECT * FROM opportunity_d ORDER BY opportunity_id").fetchall() == original
    con.close()


@pytest.mark.parametrize(
    ("table", "edit", "row", "column", "message"),
    [
        ("opportunity_d", drop_column("stage_name"), 0, "stage_name", "missing column"),
        (
            "salesforce_account_d",
            set_cell(3, "employee_count", "twelve"),
            3,
            "employee_count",
            "not a valid bigint: 'twelve'",
        ),
        (
            "salesforce_account_d",
            set_cell(2, "employee_count", "1.5"),
            2,
            "employee_count",
            "not a valid bigint",
        ),
        (
            "opportunity_d",
            set_cell(4, "close_date", "2025-02-30"),
            4,
            "close_date",
            "not a valid date",
        ),
        ("gong_call_f", set_cell(5, "is_deleted", "maybe"), 5, "is_deleted", "not a valid boolean"),
        (
            "gong_call_f",
            set_cell(2, "participant_emails", "[not json"),
            2,
            "participant_emails",
            "not a valid json_list",
        ),
        (
            "opportunity_d",
            set_cell(6, "sf_account_id", ""),
            6,
            "sf_account_id",
            "empty value in a required column",
        ),
        ("opportunity_d", duplicate_row(3), -1, "opportunity_id", "duplicate key"),
    ],
)
def test_bad_files_are_refused_and_nothing_changes(
    export: Path,
    tmp_path: Path,
    table: str,
    edit: Callable[[Rows], Rows],
    row: int,
    column: str,
    message: str,
) -> None:
    dest = tmp_path / "wh.duckdb"
    load_directory(export, dest)
    before = {t: count(dest, t) for t in SMALL}
    src = copy_with(export, tmp_path, table, edit)
    # An unrelated good change in the same load must not be applied either.
    (src / "warehouse_meta.csv").write_text("key,value\nas_of,2030-01-01\n")
    with pytest.raises(LoadError) as info:
        load_directory(src, dest)
    err = info.value
    assert (err.file, err.column) == (f"{table}.csv", column)
    assert message in err.message
    n_rows = len((src / f"{table}.csv").read_text().splitlines()) - 1
    assert err.row == (n_rows if row == -1 else row)
    assert f"{table}.csv, row {err.row}, column {column}" in str(err)
    assert {t: count(dest, t) for t in SMALL} == before
    con = duckdb.connect(str(dest), read_only=True)
    as_of = con.execute("SELECT value FROM warehouse_meta WHERE key = 'as_of'").fetchone()
    con.close()
    assert as_of == ("2025-06-30",)


def test_failed_first_load_leaves_no_tables(export: Path, tmp_path: Path) -> None:
    src = copy_with(export, tmp_path, "opportunity_d", duplicate_row(1))
    dest = tmp_path / "new.duckdb"
    with pytest.raises(LoadError):
        load_directory(src, dest)
    con = duckdb.connect(str(dest), read_only=True)
    assert con.execute("SELECT COUNT(*) FROM information_schema.tables").fetchone() == (0,)
    con.close()


def test_unknown_file_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("a\n1\n")
    with pytest.raises(LoadError, match="no warehouse table named 'customers'"):
        load_directory(tmp_path, tmp_path / "wh.duckdb")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LoadError, match=r"no \.csv or \.parquet files"):
        load_directory(empty, tmp_path / "wh.duckdb")


def test_cli_load_reports_error_and_exit_code(export: Path, tmp_path: Path) -> None:
    src = copy_with(export, tmp_path, "opportunity_d", duplicate_row(1))
    result = CliRunner().invoke(
        warehouse_app, ["load", "--from", str(src), "--path", str(tmp_path / "w.duckdb")]
    )
    assert result.exit_code == 1
    assert "opportunity_d.csv, row" in result.output and "duplicate key" in result.output
    ok = CliRunner().invoke(
        warehouse_app, ["load", "--from", str(export), "--path", str(tmp_path / "w.duckdb")]
    )
    assert ok.exit_code == 0, ok.output
    assert "opportunity_d" in ok.output
