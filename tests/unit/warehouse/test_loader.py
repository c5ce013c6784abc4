"""`revops warehouse load` (files named after the tables): every problem reported with its
file, line (header = line 1), column and value; all or nothing; a refused or failed load
leaves the warehouse exactly as it was, and a refused first load leaves no file."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from services.cli.warehouse import warehouse_app
from services.data_agent.warehouse.loader import LoadOptions, LoadRefused, load_directory
from services.data_agent.warehouse.quality_report import ShownProblem

from .conftest import Demo

Rows = list[list[str]]
SMALL = (
    "salesforce_account_d",
    "opportunity_d",
    "opportunity_stage_f",
    "gong_call_f",
    "warehouse_meta",
)


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
        return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchall()[0][0])
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
    result = load_directory(export, dest, LoadOptions())
    assert result.written and result.report.errors == 0
    for name in SMALL:
        assert result.counts[name] >= demo.sql(f"SELECT COUNT(*) FROM {name}")[0][0]
    assert result.counts["consumption_daily_f"] == 5 * 365
    con = duckdb.connect(str(dest), read_only=True)
    original = demo.sql("SELECT * FROM opportunity_d ORDER BY opportunity_id")
    assert con.execute("SELECT * FROM opportunity_d ORDER BY opportunity_id").fetchall() == original
    # every loaded row knows its line: the first data row of a file is line 2
    first = con.execute(
        "SELECT MIN(source_line) FROM warehouse_row_source WHERE table_name = 'opportunity_d'"
    ).fetchall()
    con.close()
    assert first == [(2,)]


def record_line(path: Path, row: int) -> int:
    """The line (as an editor shows it) where data row `row` starts (header = row 0):
    counted independently of the loader, values spanning lines included."""
    reader = csv.reader(io.StringIO(path.read_text()))
    consumed = 0
    for index, _ in enumerate(reader):
        if index == row:
            return consumed + 1
        consumed = reader.line_num
    raise AssertionError(f"{path} has no row {row}")


def only(problems: list[ShownProblem], rule: str) -> ShownProblem:
    found = [p for p in problems if p.rule == rule]
    assert found, [p.render() for p in problems]
    return found[0]


@pytest.mark.parametrize(
    ("table", "edit", "row", "column", "rule", "message"),
    [
        ("salesforce_account_d", set_cell(3, "employee_count", "twelve"), 3, "employee_count",
         "bad_value", "not a whole number"),
        ("salesforce_account_d", set_cell(2, "employee_count", "1.5"), 2, "employee_count",
         "bad_value", "not a whole number"),
        ("opportunity_d", set_cell(4, "close_date", "2025-02-30"), 4, "close_date", "bad_value",
         "not a date"),
        # call transcripts span several lines: the line is the file's, not the row number
        ("gong_call_f", set_cell(5, "is_deleted", "maybe"), 5, "is_deleted", "bad_value",
         "not true/false"),
        ("gong_call_f", set_cell(2, "participant_emails", "[not json"), 2, "participant_emails",
         "bad_value", "not a JSON list"),
        ("opportunity_d", set_cell(6, "stage_name", "Won"), 6, "stage_name", "unknown_stage",
         "stage 'Won' is not in the stage model"),
        ("opportunity_d", set_cell(6, "opportunity_id", ""), 6, "opportunity_id",
         "missing_value", "required value is empty"),
        ("opportunity_d", set_cell(3, "sf_account_id", "001999999999999"), 3, "sf_account_id",
         "unknown_account", "account '001999999999999' is not in salesforce_account_d"),
        ("opportunity_d", duplicate_row(3), -1, "opportunity_id", "duplicate_key",
         "same opportunity_id as opportunity_d.csv 4"),
        ("opportunity_stage_f", set_cell(5, "opportunity_id", "006999999999999"), 5,
         "opportunity_id", "unknown_opportunity",
         "opportunity '006999999999999' is not in opportunity_d"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_and_nothing_changes(
    export: Path,
    tmp_path: Path,
    table: str,
    edit: Callable[[Rows], Rows],
    row: int,
    column: str,
    rule: str,
    message: str,
) -> None:
    dest = tmp_path / "wh.duckdb"
    load_directory(export, dest, LoadOptions())
    before = dest.read_bytes()
    src = copy_with(export, tmp_path, table, edit)
    # An unrelated good change in the same load must not be applied either.
    (src / "warehouse_meta.csv").write_text("key,value\nas_of,2030-01-01\n")
    with pytest.raises(LoadRefused) as info:
        load_directory(src, dest, LoadOptions(limit=100_000))
    problem = only(info.value.report.problems, rule)
    path = src / f"{table}.csv"
    rows = list(csv.reader(io.StringIO(path.read_text())))
    line = record_line(path, len(rows) - 1 if row == -1 else row)
    assert problem.location == f"{table}.csv line {line}"
    assert problem.column == column
    assert message in problem.message
    assert f"{table}.csv line" in problem.render() and f"column {column}" in problem.render()
    assert dest.read_bytes() == before  # not one byte changed
    assert not list(tmp_path.glob(".wh.duckdb.loading-*"))


def test_every_problem_is_reported_not_just_the_first(export: Path, tmp_path: Path) -> None:
    def three_bad(rows: Rows) -> Rows:
        for r in (2, 5, 9):
            rows[r][rows[0].index("close_date")] = "soon"
        return rows

    src = copy_with(export, tmp_path, "opportunity_d", three_bad)
    with pytest.raises(LoadRefused) as info:
        load_directory(src, tmp_path / "wh.duckdb", LoadOptions())
    report = info.value.report
    assert report.count("bad_value") == 3
    assert [p.location for p in report.problems if p.rule == "bad_value"] == [
        "opportunity_d.csv line 3",
        "opportunity_d.csv line 6",
        "opportunity_d.csv line 10",
    ]


def test_missing_required_column_names_it(export: Path, tmp_path: Path) -> None:
    src = copy_with(export, tmp_path, "opportunity_d", drop_column("stage_name"))
    with pytest.raises(LoadRefused) as info:
        load_directory(src, tmp_path / "wh.duckdb", LoadOptions())
    assert "missing column(s) stage_name needed for opportunity_d" in info.value.reason
    assert not (tmp_path / "wh.duckdb").exists()


def test_optional_columns_may_be_absent(export: Path, tmp_path: Path) -> None:
    def minimal(rows: Rows) -> Rows:
        keep = [rows[0].index(c) for c in ("opportunity_id", "stage_name", "sf_account_id")]
        return [[r[i] for i in keep] for r in rows]

    src = copy_with(export, tmp_path, "opportunity_d", minimal)
    result = load_directory(src, tmp_path / "wh.duckdb", LoadOptions())
    assert result.written
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    names = con.execute("SELECT COUNT(*) FROM opportunity_d WHERE name = opportunity_id").fetchall()
    con.close()
    assert names == [(result.counts["opportunity_d"],)]  # the name falls back to the id


def test_failed_first_load_leaves_no_file(export: Path, tmp_path: Path) -> None:
    src = copy_with(export, tmp_path, "opportunity_d", duplicate_row(1))
    dest = tmp_path / "new.duckdb"
    with pytest.raises(LoadRefused):
        load_directory(src, dest, LoadOptions())
    assert list(tmp_path.iterdir()) == [tmp_path / "src"]


def test_unknown_file_lists_the_tables_and_the_import_command(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text("a\n1\n")
    with pytest.raises(LoadRefused) as info:
        load_directory(tmp_path, tmp_path / "wh.duckdb", LoadOptions())
    reason = info.value.reason
    assert "accounts.csv: no warehouse table by that name" in reason
    assert "salesforce_account_d, opportunity_d" in reason
    assert "revops warehouse import --mapping PRESET" in reason
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LoadRefused, match=r"no \.csv or \.parquet files"):
        load_directory(empty, tmp_path / "wh.duckdb", LoadOptions())


def test_unknown_columns_are_reported_not_silently_dropped(export: Path, tmp_path: Path) -> None:
    def extra(rows: Rows) -> Rows:
        return [[*r, "x"] for r in rows[:1]] + [[*r, "1"] for r in rows[1:]]

    src = copy_with(export, tmp_path, "salesforce_account_d", lambda rows: [
        [*rows[0], "employe_count"], *[[*r, "5"] for r in rows[1:]]
    ])  # fmt: skip
    result = load_directory(src, tmp_path / "wh.duckdb", LoadOptions(limit=100_000))
    problem = only(result.report.problems, "unused_column")
    assert problem.column == "employe_count"
    assert "salesforce_account_d has no column 'employe_count': ignored" in problem.message
    assert extra([["a"], ["b"]]) == [["a", "x"], ["b", "1"]]


def test_cli_load_reports_error_and_exit_code(export: Path, tmp_path: Path) -> None:
    src = copy_with(export, tmp_path, "opportunity_d", duplicate_row(1))
    result = CliRunner().invoke(
        warehouse_app, ["load", "--from", str(src), "--path", str(tmp_path / "w.duckdb")]
    )
    assert result.exit_code == 1
    assert "opportunity_d.csv line" in result.output and "duplicate_key" in result.output
    assert "load refused, nothing written" in result.output
    ok = CliRunner().invoke(
        warehouse_app, ["load", "--from", str(export), "--path", str(tmp_path / "w.duckdb")]
    )
    assert ok.exit_code == 0, ok.output
    assert "Data-quality report" in ok.output and "loaded into" in ok.output
    # progress on stderr: each file read, staging, checks, and each table written (a new
    # warehouse: the tables of the files)
    steps = 2 * len(list(export.iterdir())) + 2
    assert f"warehouse load: {steps} steps in " in ok.stderr, ok.stderr
