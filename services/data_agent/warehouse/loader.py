"""Import warehouse tables from CSV/Parquet files (file name = table name), all or nothing.

Every file is read as text (CSV) or as-is (Parquet) into arrow with a 1-based `_row`
column, checked in DuckDB with set-based queries (columns present, values castable,
NOT NULL columns filled, JSON lists valid, keys unique), and only when every file passed
are the tables replaced, in one transaction. Any problem raises `LoadError` naming the
file, the row and the column; the warehouse is then exactly as it was.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from services.data_agent.warehouse.schema import TABLES, Column, ColumnType, Table, create_all_ddl

ROW_COL = "_row"
SUFFIXES = (".csv", ".parquet")
_DUCK_TYPES = {
    ColumnType.TEXT: "VARCHAR",
    ColumnType.BIGINT: "BIGINT",
    ColumnType.DOUBLE: "DOUBLE",
    ColumnType.DATE: "DATE",
    ColumnType.TIMESTAMP: "TIMESTAMP",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.JSON_LIST: "VARCHAR",
}


@dataclass
class LoadError(ValueError):
    file: str
    message: str
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


def _q(identifier: str) -> str:
    """Quote an identifier that comes from the schema registry (never from file content)."""
    return '"' + identifier.replace('"', '""') + '"'


def _read(path: Path) -> pa.Table:
    try:
        if path.suffix == ".parquet":
            data = pq.read_table(path)
        else:
            with path.open(newline="") as fh:
                header = next(csv.reader(fh), None)
            if not header:
                raise LoadError(path.name, "empty file (no header row)", row=0)
            data = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={h: pa.string() for h in header},
                    strings_can_be_null=True,
                ),
            )
    except LoadError:
        raise
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise LoadError(path.name, f"cannot read file: {exc}") from exc
    rows = pa.array(range(1, data.num_rows + 1), type=pa.int64())
    return data.append_column(ROW_COL, rows)


def _type_problem(col: Column) -> str | None:
    """SQL condition (on the staged column `v`) that is true for a value of the wrong type."""
    target = _DUCK_TYPES[col.type]
    if col.type is ColumnType.TEXT:
        return None
    if col.type is ColumnType.JSON_LIST:
        return "v IS NOT NULL AND NOT COALESCE(json_valid(CAST(v AS VARCHAR)), FALSE)"
    bad_cast = f"v IS NOT NULL AND TRY_CAST(v AS {target}) IS NULL"
    if col.type is ColumnType.BIGINT:
        # TRY_CAST('1.5' AS BIGINT) rounds; an integer column must hold integers.
        return (
            f"({bad_cast}) OR (v IS NOT NULL AND NOT regexp_full_match("
            "trim(CAST(v AS VARCHAR)), '[+-]?[0-9]+(\\.0+)?'))"
        )
    return bad_cast


def _check(con: duckdb.DuckDBPyConnection, name: str, table: Table, staged: str) -> None:
    present = [r[0] for r in con.execute(f"SELECT * FROM {staged} LIMIT 0").description or []]
    missing = [c for c in table.column_names if c not in present]
    if missing:
        raise LoadError(name, f"missing column(s) {', '.join(missing)}", row=0, column=missing[0])
    extra = [c for c in present if c not in table.column_names and c != ROW_COL]
    if extra:
        raise LoadError(name, f"unknown column(s) {', '.join(extra)}", row=0, column=extra[0])
    for col in table.columns:
        checks = []
        if not col.nullable:
            checks.append(("v IS NULL", "empty value in a required column"))
        problem = _type_problem(col)
        if problem:
            checks.append((problem, f"not a valid {col.type.value}"))
        for condition, message in checks:
            hit = con.execute(
                f"SELECT {ROW_COL}, CAST(v AS VARCHAR) FROM (SELECT {ROW_COL}, {_q(col.name)} "
                f"AS v FROM {staged}) WHERE {condition} ORDER BY {ROW_COL} LIMIT 1"
            ).fetchone()
            if hit:
                shown = "" if hit[1] is None else f": {hit[1][:60]!r}"
                raise LoadError(name, message + shown, row=int(hit[0]), column=col.name)
    keys = ", ".join(_q(k) for k in table.key)
    dup = con.execute(
        f"SELECT {ROW_COL}, first_row FROM (SELECT {ROW_COL}, "
        f"MIN({ROW_COL}) OVER (PARTITION BY {keys}) AS first_row, "
        f"ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {ROW_COL}) AS n FROM {staged}) "
        f"WHERE n = 2 ORDER BY {ROW_COL} LIMIT 1"
    ).fetchone()
    if dup:
        raise LoadError(
            name,
            f"duplicate key ({', '.join(table.key)}), first seen at row {dup[1]}",
            row=int(dup[0]),
            column=table.key[0],
        )


def _files(src: Path) -> dict[str, Path]:
    if not src.is_dir():
        raise LoadError(str(src), "not a directory")
    found: dict[str, Path] = {}
    for path in sorted(src.iterdir()):
        if path.suffix not in SUFFIXES:
            continue
        if path.stem not in TABLES:
            raise LoadError(path.name, f"no warehouse table named {path.stem!r}")
        if path.stem in found:
            raise LoadError(path.name, f"two files for table {path.stem!r}")
        found[path.stem] = path
    if not found:
        raise LoadError(str(src), f"no {' or '.join(SUFFIXES)} files named after a table")
    return found


def load_directory(src: Path | str, dest: Path | str) -> dict[str, int]:
    """Replace the tables found in `src` in the DuckDB warehouse `dest`; rows per table."""
    files = _files(Path(src))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(dest))
    try:
        staged: dict[str, str] = {}
        for name, path in files.items():
            view = f"_staged_{name}"
            con.register(view, _read(path))
            _check(con, path.name, TABLES[name], view)
            staged[name] = view
        counts: dict[str, int] = {}
        con.execute("BEGIN TRANSACTION")
        try:
            for ddl in create_all_ddl("duckdb"):
                con.execute(ddl)
            for name, view in staged.items():
                table = TABLES[name]
                cols = ", ".join(_q(c.name) for c in table.columns)
                casts = ", ".join(
                    f"CAST({_q(c.name)} AS {_DUCK_TYPES[c.type]})" for c in table.columns
                )
                con.execute(f"DELETE FROM {_q(name)}")
                con.execute(
                    f"INSERT INTO {_q(name)} ({cols}) SELECT {casts} FROM {view} ORDER BY {ROW_COL}"
                )
                counts[name] = con.execute(f"SELECT COUNT(*) FROM {_q(name)}").fetchone()[0]  # type: ignore[index]
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return counts
    except duckdb.Error as exc:
        raise LoadError(str(dest), f"warehouse error: {exc}") from exc
    finally:
        con.close()
