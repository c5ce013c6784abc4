"""Import CRM exports into the warehouse: with a mapping, or files named after the tables.

One run: read the source files (`sources.py`), stage them as typed rows the way the mapping
says (`staging.py`), check the result together with the warehouse tables the import does
not replace (`quality.py`), and only then write. Writing builds a complete new warehouse in
a temporary file next to the target (the tables not replaced are copied over) and renames
it into place, so a refused or failed load leaves the warehouse exactly as it was, and a
first load that fails leaves no file at all.

Without a quarantine folder the load is all or nothing: any error refuses it. With one, the
valid rows load and the rejected source lines are written to `<folder>/<file>.rejected.csv`
with their reasons (rows with the wrong number of cells to `<file>.bad_rows.txt`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from services.common.stages import StageRules, load_stage_model
from services.data_agent.warehouse.mapping import IMPORT_TABLES, ImportMapping, identity_mapping
from services.data_agent.warehouse.quality import (
    ProblemLog,
    QualityChecker,
    first_problems,
    latest_activity,
    problem_counts,
)
from services.data_agent.warehouse.quality_report import (
    DEFAULT_LIMIT,
    QualityReport,
    shown_problems,
)
from services.data_agent.warehouse.schema import TABLES, create_all_ddl
from services.data_agent.warehouse.sources import (
    SUFFIXES,
    SourceData,
    SourceError,
    file_header,
    find_files,
    read_source,
)
from services.data_agent.warehouse.sqltext import first_row, key_sql, lit, q
from services.data_agent.warehouse.staging import MappingMismatch, Staged, Stager

if TYPE_CHECKING:
    from services.common.progress import Progress


class LoadRefused(ValueError):
    """Nothing was written; the report says why (every problem, not just the first)."""

    def __init__(self, report: QualityReport, reason: str) -> None:
        super().__init__(reason)
        self.report = report
        self.reason = reason


@dataclass
class LoadResult:
    report: QualityReport
    counts: dict[str, int] = field(default_factory=dict)  # rows written per table
    quarantined: dict[str, int] = field(default_factory=dict)  # file -> rejected lines
    written: bool = False


@dataclass(frozen=True)
class LoadOptions:
    quarantine: Path | None = None
    as_of: date | None = None
    limit: int = DEFAULT_LIMIT
    stages: StageRules | None = None
    dry_run: bool = False  # check only (`revops warehouse check --from DIR`)
    mapping_name: str = ""
    warn_unused_columns: bool = False  # `load`: a column no table has is probably a typo
    # Advanced once per file read, per phase (staging, checks) and per table written.
    progress: Progress | None = None


# ---------------------------------------------------------------- entry points


def import_files(
    src: Path | str, mapping: ImportMapping, dest: Path | str, options: LoadOptions
) -> LoadResult:
    """Import the folder `src` with `mapping` into the DuckDB warehouse `dest`."""
    return _Run(Path(src), mapping, Path(dest), options).execute()


def load_directory(src: Path | str, dest: Path | str, options: LoadOptions) -> LoadResult:
    """`revops warehouse load`: every <table>.csv|.parquet of `src`, columns as named."""
    folder = Path(src)
    files = table_files(folder)
    options = replace(options, warn_unused_columns=True)
    return import_files(folder, identity_mapping(files), dest, options)


def check_warehouse(
    path: Path | str, stages: StageRules | None = None, as_of: date | None = None, limit: int = 50
) -> QualityReport:
    """The data-quality report of an existing warehouse (rows located by the file and line
    they were loaded from, when the warehouse knows them)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {lit(str(path))} AS old (READ_ONLY)")
        log = ProblemLog(con)
        relations = _existing_relations(con, set())
        day = as_of or _meta_as_of(con) or latest_activity(con, relations) or date.today()
        QualityChecker(con, relations, stages or load_stage_model(), log).run(day)
        return _report(con, relations, day, limit, Staged())
    finally:
        con.close()


# ---------------------------------------------------------------- one run


class _Run:
    def __init__(self, src: Path, mapping: ImportMapping, dest: Path, options: LoadOptions):
        self.src = src
        self.mapping = mapping
        self.dest = dest
        self.options = options
        self.stages = options.stages or load_stage_model()
        self.con = duckdb.connect(":memory:")
        self.log = ProblemLog(self.con)
        self.staged = Staged()
        self.sources: dict[str, SourceData | None] = {}

    def execute(self) -> LoadResult:
        try:
            return self._execute()
        finally:
            self.con.close()

    def _step(self) -> None:
        if self.options.progress is not None:
            self.options.progress.advance()

    def _execute(self) -> LoadResult:
        if self.options.progress is not None:  # files, staging, checks, then each table
            self.options.progress.set_total(len(self.mapping.sources) + 2 + len(TABLES))
        fatal = self._read_sources()
        if fatal is None:
            fatal = self._stage()
            self._step()
        if fatal is not None:
            report = self._report({}, None)
            raise LoadRefused(report, fatal)
        replaced = set(self.staged.counts)
        if self.dest.exists():
            self.con.execute(f"ATTACH {lit(str(self.dest))} AS old (READ_ONLY)")
        relations = {t: f"stg_{t}" for t in replaced}
        relations.update(_existing_relations(self.con, replaced) if self.dest.exists() else {})
        relations = {t: relations[t] for t in TABLES if t in relations}  # parents first
        as_of = (
            self.options.as_of
            or _staged_meta_as_of(self.con, replaced)
            or latest_activity(self.con, relations)
            or date.today()
        )
        if self.options.progress is not None:
            self.options.progress.set_total(len(self.mapping.sources) + 2 + len(relations))
        checker = QualityChecker(self.con, relations, self.stages, self.log)
        checker.run(as_of)
        self._step()
        report = self._report(relations, as_of)
        if self.options.dry_run:
            return LoadResult(report)
        if report.errors and self.options.quarantine is None:
            raise LoadRefused(
                report,
                f"{report.errors:,} error(s): nothing was loaded (fix them, or load the valid "
                "rows with --quarantine DIR)",
            )
        quarantined = self._quarantine(relations) if report.errors else {}
        counts = self._write(checker, relations, replaced, as_of)
        return LoadResult(report, counts, quarantined, written=True)

    # ------------------------------------------------------------ reading and staging
    def _read_sources(self) -> str | None:
        if not self.src.is_dir():
            self.log.add("unusable_file", file=str(self.src), detail="not a folder")
            return f"{self.src} is not a folder"
        for name, spec in self.mapping.sources.items():
            try:
                paths = find_files(self.src, spec)
                if not paths:
                    if spec.required:
                        present = ", ".join(sorted(p.name for p in self.src.iterdir())) or "none"
                        raise SourceError(
                            spec.file, f"no file matches in {self.src} (files there: {present})"
                        )
                    self.sources[name] = None
                    continue
                self.sources[name] = read_source(name, paths, spec)
            except SourceError as exc:
                self.log.add("unusable_file", file=exc.file, detail=exc.message)
            finally:
                self._step()
        if self.options.warn_unused_columns:
            self._unused_columns()
        for data in self.sources.values():
            for bad in data.bad_rows if data else []:
                self.log.add(
                    "bad_row",
                    file=bad.file,
                    line=bad.line,
                    value=bad.text[:200],
                    detail=f"{bad.actual} cell(s) where the header has {bad.expected}",
                )
        return "a file cannot be used" if self.log.errors() and self._file_errors() else None

    def _unused_columns(self) -> None:
        for name, blocks in self.mapping.tables.items():
            data = self.sources.get(blocks[0].source)
            if data is None:
                continue
            read = {c for b in blocks for spec in b.columns.values() for c in spec.source_columns()}
            for column in data.header:
                if column not in read:
                    self.log.add(
                        "unused_column",
                        file=data.files[0],
                        line=1,
                        column=column,
                        detail=f"{name} has no column {column!r}: ignored (columns: "
                        f"{', '.join(TABLES[name].column_names)})",
                    )

    def _file_errors(self) -> bool:
        row = first_row(self.con, "SELECT COUNT(*) FROM problems WHERE rule = 'unusable_file'")
        return bool(row and row[0])

    def _stage(self) -> str | None:
        stager = Stager(self.con, self.mapping, self.sources, self.log, self.stages.closed_names)
        try:
            self.staged = stager.stage_all()
        except MappingMismatch as exc:
            self.log.add("unusable_file", file=str(exc).split(": ", 1)[0], detail=str(exc))
            return str(exc)
        return None

    # ------------------------------------------------------------ report
    def _report(self, relations: dict[str, str], as_of: date | None) -> QualityReport:
        return _report(self.con, relations, as_of, self.options.limit, self.staged)

    # ------------------------------------------------------------ quarantine
    def _quarantine(self, relations: dict[str, str]) -> dict[str, int]:
        folder = self.options.quarantine
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        self.con.execute(
            # line_rejected is left out: such a line always has its own reason too
            "CREATE OR REPLACE TEMP TABLE rejected_lines AS SELECT file, line, "
            "string_agg(DISTINCT rule || ': ' || COALESCE(detail, ''), '; ') AS problems "
            "FROM problems WHERE severity = 'error' AND file IS NOT NULL AND line IS NOT NULL "
            "AND rule <> 'line_rejected' GROUP BY file, line"
        )
        written: dict[str, int] = {}
        for data in self.sources.values():
            if data is None:
                continue
            view = f"src_{data.name}"
            for file in data.files:
                target = folder / f"{Path(file).stem}.rejected.csv"
                n = self._copy(
                    f"SELECT r.line AS _line, r.problems AS _problems, s.* EXCLUDE (_line, "
                    f"_file) FROM {view} AS s JOIN rejected_lines AS r ON r.file = s._file "
                    f"AND r.line = s._line WHERE s._file = {lit(file)} ORDER BY r.line",
                    target,
                )
                if n:
                    written[target.name] = n
            bad = data.bad_rows
            if bad:
                target = folder / f"{Path(data.files[0]).stem}.bad_rows.txt"
                target.write_text(
                    "".join(
                        f"{b.file} line {b.line}: {b.actual} cell(s), header has "
                        f"{b.expected}: {b.text}\n"
                        for b in bad
                    )
                )
                written[target.name] = len(bad)
        for table, relation in relations.items():
            if relation.startswith("old_"):
                target = folder / f"{table}.rejected.csv"
                n = self._copy(
                    f"SELECT p.problems AS _problems, t.* EXCLUDE (_file, _line, _block, _rid) "
                    f"FROM {relation} AS t JOIN (SELECT rid, string_agg(rule || ': ' || "
                    "COALESCE(detail, ''), '; ') AS problems FROM problems WHERE severity = "
                    f"'error' AND table_name = {lit(table)} GROUP BY rid) AS p ON p.rid = t._rid",
                    target,
                )
                if n:
                    written[target.name] = n
        return written

    def _copy(self, select: str, target: Path) -> int:
        row = first_row(self.con, f"SELECT COUNT(*) FROM ({select})")
        n = int(row[0]) if row else 0
        if n:
            self.con.execute(f"COPY ({select}) TO {lit(str(target))} (HEADER, DELIMITER ',')")
        return n

    # ------------------------------------------------------------ writing
    def _write(
        self,
        checker: QualityChecker,
        relations: dict[str, str],
        replaced: set[str],
        as_of: date,
    ) -> dict[str, int]:
        """Build the whole warehouse in a temporary file, then rename it into place."""
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.dest.with_name(f".{self.dest.name}.loading-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        counts: dict[str, int] = {}
        try:
            self.con.execute(f"ATTACH {lit(str(tmp))} AS out")
            for ddl in create_all_ddl("duckdb"):
                self.con.execute(ddl.replace("CREATE TABLE IF NOT EXISTS ", "CREATE TABLE out."))
            for table in relations:
                cols = ", ".join(q(c) for c in TABLES[table].column_names)
                accepted = checker.accepted(table)
                self.con.execute(
                    f"INSERT INTO out.{table} ({cols}) SELECT {cols} FROM {accepted} "
                    "ORDER BY _file, _line, _rid"
                )
                self.con.execute(
                    f"INSERT INTO out.warehouse_row_source SELECT {lit(table)}, "
                    f"{key_sql(TABLES[table], 'a')}, a._file, a._line FROM {accepted} AS a "
                    "WHERE a._file IS NOT NULL AND a._line IS NOT NULL"
                )
                if table in replaced:
                    counts[table] = _count(self.con, f"out.{table}")
                self._step()
            self._write_meta(as_of)
            self.con.execute("DETACH out")
            os.replace(tmp, self.dest)
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("DETACH out")
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            raise
        return counts

    def _write_meta(self, as_of: date) -> None:
        """Keys of the warehouse before (if any), then of a loaded warehouse_meta, then
        this load's own: as_of, when, with which mapping."""
        meta = _old_meta(self.con) if self.dest.exists() else {}
        meta.update(self.con.execute("SELECT key, value FROM out.warehouse_meta").fetchall())
        meta["as_of"] = as_of.isoformat()
        meta["loaded_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        if self.options.mapping_name:
            meta["import_mapping"] = self.options.mapping_name
        self.con.execute("DELETE FROM out.warehouse_meta")
        self.con.executemany("INSERT INTO out.warehouse_meta VALUES (?, ?)", sorted(meta.items()))


# ---------------------------------------------------------------- helpers


def table_files(folder: Path) -> dict[str, tuple[Path, list[str]]]:
    """<table>.csv|.parquet files of a `load` folder, each with its header."""
    from services.data_agent.warehouse.mapping import Source

    if not folder.is_dir():
        raise LoadRefused(QualityReport(), f"{folder} is not a folder")
    found: dict[str, tuple[Path, list[str]]] = {}
    unknown: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in SUFFIXES:
            continue
        name = path.stem
        if name not in IMPORT_TABLES and name != "warehouse_meta":
            unknown.append(path.name)
            continue
        if name in found:
            raise LoadRefused(QualityReport(), f"{path.name}: a second file for table {name}")
        found[name] = (path, file_header(path, Source(file=path.name)))
    if unknown:
        raise LoadRefused(
            QualityReport(),
            f"{', '.join(unknown)}: no warehouse table by that name. `load` takes files named "
            f"after the tables ({', '.join(IMPORT_TABLES)}, warehouse_meta); for a CRM export "
            "use `revops warehouse import --mapping PRESET` (revops warehouse mappings)",
        )
    if not found:
        raise LoadRefused(
            QualityReport(), f"{folder}: no {' or '.join(SUFFIXES)} files named after a table"
        )
    return found


def _existing_relations(con: duckdb.DuckDBPyConnection, replaced: set[str]) -> dict[str, str]:
    """Views over the attached warehouse `old` for the tables an import keeps, shaped like
    staged tables (`_file`/`_line` from warehouse_row_source when it knows them)."""
    present = {
        str(r[0])
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'old'"
        ).fetchall()
    }
    has_sources = "warehouse_row_source" in present
    relations: dict[str, str] = {}
    for name, table in TABLES.items():
        if name in replaced or name not in present or name not in IMPORT_TABLES:
            continue
        old_cols = {
            str(r[0])
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'old' AND "
                "table_name = ?",
                [name],
            ).fetchall()
        }
        cols = ", ".join(
            f"t.{q(c.name)}" if c.name in old_cols else f"CAST(NULL AS VARCHAR) AS {q(c.name)}"
            for c in table.columns
        )
        source = (
            f"LEFT JOIN old.warehouse_row_source AS rs ON rs.table_name = {lit(name)} "
            f"AND rs.row_key = {key_sql(table, 't')}"
            if has_sources
            else ""
        )
        file, line = ("rs.source_file", "rs.source_line") if has_sources else ("NULL", "NULL")
        # rowid: a stable row number, so every check names the same row the same way.
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW old_{name} AS SELECT {cols}, "
            f"CAST({file} AS VARCHAR) AS _file, CAST({line} AS BIGINT) AS _line, "
            f"CAST(NULL AS INTEGER) AS _block, t.rowid AS _rid FROM old.{name} AS t {source}"
        )
        relations[name] = f"old_{name}"
    return relations


def _old_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    try:
        return dict(con.execute("SELECT key, value FROM old.warehouse_meta").fetchall())
    except duckdb.Error:
        return {}


def _meta_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    value = _old_meta(con).get("as_of")
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _staged_meta_as_of(con: duckdb.DuckDBPyConnection, replaced: set[str]) -> date | None:
    """A `load` of warehouse_meta.csv may set as_of."""
    if "warehouse_meta" not in replaced:
        return None
    row = first_row(con, "SELECT value FROM stg_warehouse_meta WHERE key = 'as_of'")
    try:
        return date.fromisoformat(row[0]) if row and row[0] else None
    except ValueError:
        return None


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    row = first_row(con, f"SELECT COUNT(*) FROM {relation}")
    return int(row[0]) if row else 0


def _report(
    con: duckdb.DuckDBPyConnection,
    relations: dict[str, str],
    as_of: date | None,
    limit: int,
    staged: Staged,
) -> QualityReport:
    return QualityReport(
        counts=problem_counts(con),
        problems=shown_problems(first_problems(con, limit), staged.column_labels, staged.files),
        rows={t: _count(con, r) for t, r in relations.items()},
        as_of=as_of,
        limit=limit,
    )
