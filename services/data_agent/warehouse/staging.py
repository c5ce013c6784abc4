"""Turn source rows into typed warehouse rows, in DuckDB, the way a mapping says.

For each warehouse table of the mapping, its row blocks are projected from their sources
(`raw_<table>`, every value as text: renames, constants, templates, value maps) and stacked,
then typed (`stg_<table>`): numbers cleaned by the mapping's number format and scaled, dates
parsed with its formats (then ISO), booleans from true/false/yes/no/1/0. A value that does
not parse is a `bad_value` problem naming file, line, column and the value; nothing is
guessed. Then the few columns a table may leave out are filled: a deal's name from its id,
a closed deal's closing day from its close date, a stage history's previous stage, end and
duration from the next row of the same deal.

Every staged row keeps `_file`, `_line` (where it came from), `_block` (which block made it)
and a unique `_rid`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from services.data_agent.warehouse.mapping import (
    DEFAULTS,
    FALLBACKS,
    Block,
    ImportMapping,
    ValueSpec,
    required_columns,
)
from services.data_agent.warehouse.quality import ProblemLog
from services.data_agent.warehouse.schema import TABLES, Column, ColumnType, Table
from services.data_agent.warehouse.sources import FILE_COL, LINE_COL, SourceData
from services.data_agent.warehouse.sqltext import first_row, key_sql, lit, q

META_COLS = ("_file", "_line", "_block", "_rid")
_PROBLEM = {
    ColumnType.BIGINT: "not a whole number",
    ColumnType.DOUBLE: "not a number",
    ColumnType.DATE: "not a date",
    ColumnType.TIMESTAMP: "not a date/time",
    ColumnType.BOOLEAN: "not true/false",
    ColumnType.JSON_LIST: "not a JSON list",
}


class MappingMismatch(ValueError):
    """The mapping names a column the file does not have: the whole file cannot be used."""


@dataclass
class Staged:
    """Tables staged by one import: name -> rows, and what each block's columns read."""

    counts: dict[str, int] = field(default_factory=dict)
    # (table, block, warehouse column) -> the source column shown in messages
    column_labels: dict[tuple[str, int, str], str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # file -> "line" | "row"


class Stager:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        mapping: ImportMapping,
        sources: dict[str, SourceData | None],
        log: ProblemLog,
        closed_stages: Sequence[str],
    ) -> None:
        self.con = con
        self.mapping = mapping
        self.sources = sources
        self.log = log
        self.closed_stages = list(closed_stages)
        self.staged = Staged()
        self._headers: dict[str, str] = {}

    def stage_all(self) -> Staged:
        for name, data in self.sources.items():
            if data is not None:
                self.con.register(f"src_{name}", data.table)
                for file in data.files:
                    self.staged.files[file] = data.line_word
        for name, blocks in self.mapping.tables.items():
            self._stage(TABLES[name], blocks)
        return self.staged

    # ------------------------------------------------------------ projection (text)
    def _stage(self, table: Table, blocks: list[Block]) -> None:
        selects = []
        for index, block in enumerate(blocks):
            sql = self._block_select(table, index, block)
            if sql is not None:
                selects.append(sql)
        raw = f"raw_{table.name}"
        if selects:
            body = " UNION ALL ".join(selects)
        else:  # every source of the table is absent: an empty table of the right shape
            cols = ", ".join(f"CAST(NULL AS VARCHAR) AS {q(c)}" for c in table.column_names)
            body = (
                f"SELECT {cols}, CAST(NULL AS VARCHAR) AS _file, CAST(NULL AS BIGINT) AS _line,"
                " CAST(NULL AS INTEGER) AS _block WHERE FALSE"
            )
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT *, "
            f"row_number() OVER (ORDER BY _file, _line, _block) AS _rid FROM ({body})"
        )
        self._type(table, raw)
        self.staged.counts[table.name] = self._count(f"stg_{table.name}")

    def _block_select(self, table: Table, index: int, block: Block) -> str | None:
        if block.only_if_missing is not None and self.sources.get(block.only_if_missing):
            return None
        data = self.sources.get(block.source)
        if data is None:
            return None
        files = ", ".join(data.files)
        by_fold = {h.strip().casefold(): h for h in data.header}
        # Column name as the mapping writes it -> the header as the file writes it.
        self._headers = {h: h for h in data.header}
        for name in self._referenced(block):
            if name not in self._headers and name.strip().casefold() in by_fold:
                self._headers[name] = by_fold[name.strip().casefold()]
        when = block.when
        absent_when = [c for c in self._when_columns(block) if c not in self._headers]
        if absent_when:
            self.log.add(
                "absent_column",
                file=files,
                column=absent_when[0],
                detail=f"no such column: the {table.name} rows of this block are not made",
            )
            return None
        missing_required = [c for c in required_columns(table) if c not in block.columns]
        if missing_required:
            raise MappingMismatch(
                f"{files}: missing column(s) {', '.join(missing_required)} needed for "
                f"{table.name} (required: {', '.join(required_columns(table))})"
            )
        exprs = []
        for column in table.column_names:
            spec = block.columns.get(column)
            if spec is not None and not self._readable(spec):
                if column in required_columns(table):
                    raise MappingMismatch(
                        f"{files}: no column {spec.source_columns()[0]!r} (the mapping reads "
                        f"it for {table.name}.{column}, a required column); the file has: "
                        f"{', '.join(data.header)}"
                    )
                self.log.add(
                    "absent_column",
                    file=files,
                    column=" / ".join(spec.source_columns()),
                    detail=f"no such column: {table.name}.{column} is left empty",
                )
                spec = None
            if spec is not None:
                self.staged.column_labels[(table.name, index, column)] = _label(spec)
            value = self._value(spec) if spec is not None else "NULL"
            exprs.append(f"CAST({value} AS VARCHAR) AS {q(column)}")
        sql = (
            f"SELECT {', '.join(exprs)}, s.{FILE_COL} AS _file, s.{LINE_COL} AS _line, "
            f"{index} AS _block FROM src_{block.source} AS s"
        )
        if when is not None:
            sql += f" WHERE {self._when(block)}"
        if block.distinct:
            keys = ", ".join(q(k) for k in table.key)
            sql = (
                f"SELECT * FROM ({sql}) QUALIFY row_number() OVER "
                f"(PARTITION BY {keys} ORDER BY _file, _line) = 1"
            )
        return f"({sql})"

    @staticmethod
    def _when_columns(block: Block) -> list[str]:
        if block.when is None:
            return []
        return block.when.present_columns + ([block.when.column] if block.when.column else [])

    def _referenced(self, block: Block) -> list[str]:
        names = [c for spec in block.columns.values() for c in spec.source_columns()]
        return names + self._when_columns(block)

    def _readable(self, spec: ValueSpec) -> bool:
        """A column list needs one of its columns; a template needs all of its own."""
        if spec.template is not None:
            return all(c in self._headers for c in spec.template_columns())
        if spec.column is not None:
            return any(c in self._headers for c in spec.columns)
        return True

    def _cell(self, column: str) -> str:
        return f"NULLIF(TRIM(CAST(s.{q(self._headers[column])} AS VARCHAR)), '')"

    def _value(self, spec: ValueSpec) -> str:
        if spec.template is not None:
            parts = []
            for text, name, _, _ in _parse_template(spec.template):
                if text:
                    parts.append(lit(text))
                if name:
                    parts.append(f"COALESCE({self._cell(name)}, '')")
            expr = f"NULLIF(concat({', '.join(parts)}), '')"
        elif spec.column is not None:
            cells = [self._cell(c) for c in spec.columns if c in self._headers]
            expr = cells[0] if len(cells) == 1 else f"COALESCE({', '.join(cells)})"
        else:
            value = spec.constant
            if isinstance(value, bool):
                value = str(value).lower()
            expr = lit(value)
        values = spec.values
        if isinstance(values, str):
            values = self.mapping.value_maps[values]
        if values:
            cases = " ".join(
                f"WHEN {lit(k.strip().casefold())} THEN {lit(v)}" for k, v in values.items()
            )
            expr = f"CASE lower(trim({expr})) {cases} ELSE {expr} END"
        return expr

    def _when(self, block: Block) -> str:
        assert block.when is not None
        parts = [f"{self._cell(c)} IS NOT NULL" for c in block.when.present_columns]
        if block.when.column is not None and block.when.equals is not None:
            wanted = ", ".join(lit(v.strip().casefold()) for v in block.when.equals)
            parts.append(f"lower({self._cell(block.when.column)}) IN ({wanted})")
        return " AND ".join(parts)

    # ------------------------------------------------------------ typing
    def _type(self, table: Table, raw: str) -> None:
        specs = self._specs(table)
        typed = ", ".join(
            f"{self._typed(c, specs.get(c.name), f'r.{q(c.name)}')} AS {q(c.name)}"
            for c in table.columns
        )
        staged = f"stg_{table.name}"
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {staged} AS SELECT {typed}, "
            f"r._file, r._line, r._block, r._rid FROM {raw} AS r"
        )
        for column in table.columns:
            if column.type is ColumnType.TEXT:
                continue
            self.log.insert(
                f"SELECT 'error', 'bad_value', {lit(table.name)}, r._rid, r._file, r._line, "
                f"r._block, {lit(column.name)}, r.{q(column.name)}, "
                f"{lit(self._bad_detail(column, specs.get(column.name)))}, "
                f"{key_sql(table, 'r')} FROM {raw} AS r JOIN {staged} AS t USING (_rid) "
                f"WHERE r.{q(column.name)} IS NOT NULL AND t.{q(column.name)} IS NULL"
            )
        self._fill(table, staged)
        self.con.execute(f"DROP TABLE {raw}")

    def _specs(self, table: Table) -> dict[str, ValueSpec]:
        """The value spec of each column (the first block's: formats and scale are per
        column, blocks of one table share them)."""
        specs: dict[str, ValueSpec] = {}
        for block in self.mapping.tables.get(table.name, []):
            for column, spec in block.columns.items():
                specs.setdefault(column, spec)
        return specs

    def _formats(self, spec: ValueSpec | None) -> list[str]:
        if spec is not None and spec.format is not None:
            return [spec.format] if isinstance(spec.format, str) else list(spec.format)
        return list(self.mapping.date_formats)

    def _number(self, value: str) -> str:
        fmt = self.mapping.number_format
        if fmt is None:
            return value
        cleaned = (
            f"regexp_replace({value}, '^[A-Za-z]{{3}}\\s+|\\s*[A-Za-z]{{3}}$|[$€£¥%\\s]', '', 'g')"
        )
        if fmt.thousands:
            cleaned = f"replace({cleaned}, {lit(fmt.thousands)}, '')"
        if fmt.decimal != ".":
            cleaned = f"replace({cleaned}, {lit(fmt.decimal)}, '.')"
        return cleaned

    def _typed(self, column: Column, spec: ValueSpec | None, value: str) -> str:
        scale = spec.multiply if spec is not None else None
        kind = column.type
        if kind is ColumnType.TEXT:
            return value
        if kind is ColumnType.DOUBLE:
            number = f"TRY_CAST({self._number(value)} AS DOUBLE)"
            return f"({number} * {scale!r})" if scale is not None else number
        if kind is ColumnType.BIGINT:
            cleaned = self._number(value)
            number = f"TRY_CAST({cleaned} AS DOUBLE)"
            if scale is not None:
                return f"CAST(round({number} * {scale!r}) AS BIGINT)"
            return (
                f"CASE WHEN regexp_full_match(trim({cleaned}), '[+-]?[0-9]+(\\.0+)?') "
                f"THEN CAST({number} AS BIGINT) END"
            )
        if kind in (ColumnType.DATE, ColumnType.TIMESTAMP):
            formats = self._formats(spec)
            parsed = [f"TRY_CAST({value} AS TIMESTAMP)"]
            if formats:
                listed = ", ".join(lit(f) for f in formats)
                parsed.insert(0, f"try_strptime({value}, [{listed}])")
            ts = f"COALESCE({', '.join(parsed)})"
            return f"CAST({ts} AS DATE)" if kind is ColumnType.DATE else ts
        if kind is ColumnType.BOOLEAN:
            return (
                f"CASE lower({value}) WHEN 'yes' THEN TRUE WHEN 'no' THEN FALSE "
                f"ELSE TRY_CAST({value} AS BOOLEAN) END"
            )
        # JSON_LIST: kept as text when it is a JSON list
        return (
            f"CASE WHEN COALESCE(json_valid({value}), FALSE) "
            f"AND json_type({value}) = 'ARRAY' THEN {value} END"
        )

    def _bad_detail(self, column: Column, spec: ValueSpec | None) -> str:
        detail = _PROBLEM[column.type]
        if column.type in (ColumnType.DATE, ColumnType.TIMESTAMP):
            tried = [*self._formats(spec), "ISO (YYYY-MM-DD)"]
            detail += f" (formats tried: {', '.join(tried)})"
        return detail

    # ------------------------------------------------------------ filling
    def _fill(self, table: Table, staged: str) -> None:
        for (name, column), source in FALLBACKS.items():
            if name == table.name:
                self.con.execute(
                    f"UPDATE {staged} SET {q(column)} = {q(source)} WHERE {q(column)} IS NULL"
                )
        for (name, column), value in DEFAULTS.items():
            if name == table.name:
                self.con.execute(
                    f"UPDATE {staged} SET {q(column)} = {value} WHERE {q(column)} IS NULL"
                )
        if table.name == "opportunity_d" and self.closed_stages:
            closed = ", ".join(lit(s) for s in self.closed_stages)
            self.con.execute(
                f"UPDATE {staged} SET closed_at_date = close_date "
                f"WHERE closed_at_date IS NULL AND stage_name IN ({closed})"
            )
        if table.name == "opportunity_stage_f":
            self._fill_stage_history(staged)

    def _fill_stage_history(self, staged: str) -> None:
        """Rows of one deal at the same moment (engaged and closed on the same day; two
        edits saved within the minute an export shows) are put one second apart, in block
        and line order, so the history keeps their order; then previous stage, end and
        duration come from the neighbouring rows where the source left them out."""
        self.con.execute(
            f"""
UPDATE {staged} AS t SET started_at_ts = t.started_at_ts + to_seconds(d.n)
FROM (SELECT _rid, row_number() OVER (PARTITION BY opportunity_id, started_at_ts
      ORDER BY _block, _file, _line) - 1 AS n FROM {staged} WHERE started_at_ts IS NOT NULL) AS d
WHERE t._rid = d._rid AND d.n > 0
"""
        )
        self.con.execute(
            f"""
UPDATE {staged} AS t SET
  from_stage = COALESCE(t.from_stage, n.prev_stage),
  ended_at_ts = COALESCE(t.ended_at_ts, n.next_start),
  days_in_stage = COALESCE(t.days_in_stage, round(
    (epoch(COALESCE(t.ended_at_ts, n.next_start)) - epoch(t.started_at_ts)) / 86400.0, 2))
FROM (SELECT _rid,
        lag(to_stage) OVER w AS prev_stage,
        lead(started_at_ts) OVER w AS next_start
      FROM {staged} WHERE started_at_ts IS NOT NULL AND opportunity_id IS NOT NULL
      WINDOW w AS (PARTITION BY opportunity_id ORDER BY started_at_ts)) AS n
WHERE t._rid = n._rid
"""
        )

    def _count(self, relation: str) -> int:
        row = first_row(self.con, f"SELECT COUNT(*) FROM {relation}")
        return int(row[0]) if row else 0


def _parse_template(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    import string

    return list(string.Formatter().parse(template))


def _label(spec: ValueSpec) -> str:
    if spec.template is not None:
        return f"template {spec.template!r}"
    if spec.column is not None:
        return " / ".join(spec.columns)
    return f"constant {spec.constant!r}"
