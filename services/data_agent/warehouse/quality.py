"""The data-quality checks every load runs and `revops warehouse check` prints.

Checks are set-based SQL over one relation per table (the staged rows of an import, or the
warehouse's own tables), each row carrying `_file`, `_line` (where it came from) and `_rid`.
Every problem found goes into the `problems` table with its rule, severity, file, line,
column and value; nothing stops at the first one.

Errors reject the row (a load refuses, or with a quarantine folder sets the row aside):
empty required value, value of the wrong type, duplicate key, stage not in the stage model,
a reference to an account or opportunity that is not there. Rows rejected this way take
the rows that refer to them along, and every row made from the same source line (a line
loads whole or not at all). Warnings are reported and the row is loaded: a deal without an
account, a product or owner not in their table, close date before create date, an open deal
past its close date, a deal stale in its stage, near-duplicate names ('GTXPro' / 'GTX Pro').
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from services.data_agent.warehouse.schema import TABLES
from services.data_agent.warehouse.sqltext import first_row, key_sql, lit, q

if TYPE_CHECKING:
    from services.common.stages import StageRules

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class QualityRule:
    code: str
    severity: str
    title: str


RULES: dict[str, QualityRule] = {
    r.code: r
    for r in (
        QualityRule("unusable_file", ERROR, "file missing, unreadable or not as the mapping says"),
        QualityRule("bad_row", ERROR, "row with a different number of cells than the header"),
        QualityRule("missing_value", ERROR, "required value is empty"),
        QualityRule("bad_value", ERROR, "value of the wrong type (number, date, true/false)"),
        QualityRule("duplicate_key", ERROR, "row with the key of an earlier row"),
        QualityRule("unknown_stage", ERROR, "stage not in the stage model"),
        QualityRule("unknown_account", ERROR, "refers to an account that is not loaded"),
        QualityRule("unknown_opportunity", ERROR, "refers to an opportunity that is not loaded"),
        QualityRule("line_rejected", ERROR, "another row made from the same line was rejected"),
        QualityRule("parent_rejected", ERROR, "refers to a row that was rejected"),
        QualityRule("deal_without_account", WARNING, "deal without an account"),
        QualityRule("unknown_product", WARNING, "product not in the product table"),
        QualityRule("unknown_owner", WARNING, "owner not in the employee table"),
        QualityRule("close_before_create", WARNING, "close date before the create date"),
        QualityRule("open_past_close_date", WARNING, "open deal past its close date"),
        QualityRule("stale_in_stage", WARNING, "open deal in its stage far longer than won deals"),
        QualityRule("near_duplicate_name", WARNING, "two names that differ only slightly"),
        QualityRule("absent_column", WARNING, "the mapping reads a column the file lacks"),
        QualityRule("unused_column", WARNING, "a column of a `load` file that no table has"),
    )
}
PROBLEM_COLUMNS = (
    "severity VARCHAR, rule VARCHAR, table_name VARCHAR, rid BIGINT, file VARCHAR, "
    "line BIGINT, block INTEGER, column_name VARCHAR, value VARCHAR, detail VARCHAR, "
    "key VARCHAR"
)
# (child table, column, parent table, rule): checked in this order, parents first.
REFERENCES = (
    ("opportunity_d", "sf_account_id", "salesforce_account_d", "unknown_account"),
    ("contact_d", "sf_account_id", "salesforce_account_d", "unknown_account"),
    ("agreement_f", "sf_account_id", "salesforce_account_d", "unknown_account"),
    ("support_ticket_f", "sf_account_id", "salesforce_account_d", "unknown_account"),
    ("consumption_daily_f", "sf_account_id", "salesforce_account_d", "unknown_account"),
    ("billing_event_f", "sf_account_id", "salesforce_account_d", "unknown_account"),
    ("gong_call_f", "sf_account_id", "salesforce_account_d", "unknown_account"),
    ("opportunity_stage_f", "opportunity_id", "opportunity_d", "unknown_opportunity"),
    ("gong_call_f", "opportunity_id", "opportunity_d", "unknown_opportunity"),
)
# (table, column, catalog table, rule): warnings, the row still loads.
SOFT_REFERENCES = (
    ("opportunity_d", "product_id", "product_d", "unknown_product"),
    ("opportunity_d", "owner_id", "employee_d", "unknown_owner"),
    ("salesforce_account_d", "sf_owner_id", "employee_d", "unknown_owner"),
)
# (catalog table, id column, name column): checked for near-duplicate names.
NAMED = (
    ("salesforce_account_d", "sf_account_id", "sf_account_name"),
    ("product_d", "product_id", "product_name"),
    ("employee_d", "sf_user_id", "name"),
)
#: What a catalog's rows are called in messages.
NOUNS = {
    "salesforce_account_d": "account",
    "opportunity_d": "opportunity",
    "product_d": "product",
    "employee_d": "owner",
}
#: Consequences of another problem on the same line: counted, not listed one by one.
CONSEQUENCES = ("line_rejected", "parent_rejected")
ERROR_LINES = (
    "SELECT DISTINCT file, line FROM problems WHERE severity = 'error' AND file IS NOT NULL "
    "AND line IS NOT NULL"
)
FUZZY_MAX_NAMES = 5_000  # above this, only names equal once spaces/case/punctuation go
FUZZY_MIN_SCORE = 92.0
_MAX_CASCADE = 6


def quoted(expr: str) -> str:
    """SQL text of `expr` in single quotes, as messages show values."""
    return "'''' || CAST(" + expr + " AS VARCHAR) || ''''"


def normalized_name(name: str) -> str:
    """'GTX Pro' and 'GTXPro' and 'gtx-pro' are the same name once normalized."""
    return re.sub(r"[^0-9a-z]", "", name.casefold())


class ProblemLog:
    """The `problems` table of one check run."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        con.execute(f"CREATE OR REPLACE TEMP TABLE problems ({PROBLEM_COLUMNS})")

    def insert(self, select_sql: str) -> None:
        """Append the rows of a SELECT giving the problem columns in order."""
        self.con.execute(f"INSERT INTO problems {select_sql}")

    def add(
        self,
        rule: str,
        *,
        file: str | None = None,
        line: int | None = None,
        table: str | None = None,
        column: str | None = None,
        value: str | None = None,
        detail: str = "",
        key: str | None = None,
        block: int | None = None,
    ) -> None:
        self.con.execute(
            "INSERT INTO problems VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)",
            [RULES[rule].severity, rule, table, file, line, block, column, value, detail, key],
        )

    def errors(self) -> int:
        row = first_row(self.con, "SELECT COUNT(*) FROM problems WHERE severity = 'error'")
        return int(row[0]) if row else 0


class QualityChecker:
    """Runs every check over `relations` (table name -> relation with _file/_line/_rid)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        relations: dict[str, str],
        stages: StageRules,
        log: ProblemLog,
    ) -> None:
        self.con = con
        self.relations = relations
        self.stages = stages
        self.log = log

    # ------------------------------------------------------------ helpers
    def accepted(self, table: str) -> str:
        """The table's rows without errors (a relation usable in FROM)."""
        return (
            f"(SELECT * FROM {self.relations[table]} WHERE _rid NOT IN (SELECT rid FROM "
            f"problems WHERE severity = 'error' AND table_name = {lit(table)} "
            "AND rid IS NOT NULL))"
        )

    def _emit(
        self,
        rule: str,
        table: str,
        column: str | None,
        where: str,
        *,
        value: str | None = None,
        detail: str = "''",
        source: str | None = None,
    ) -> None:
        """Log a problem for each row of `table` (alias t) matching `where`."""
        t = TABLES[table]
        shown = (
            value
            if value is not None
            else (f"CAST(t.{q(column)} AS VARCHAR)" if column else "NULL")
        )
        self.log.insert(
            f"SELECT {lit(RULES[rule].severity)}, {lit(rule)}, {lit(table)}, t._rid, t._file, "
            f"t._line, t._block, {lit(column)}, {shown}, {detail}, {key_sql(t, 't')} "
            f"FROM {source or self.accepted(table)} AS t WHERE {where}"
        )

    def _errors_now(self) -> int:
        return self.log.errors()

    # ------------------------------------------------------------ the run
    def run(self, as_of: date) -> None:
        for table in self.relations:
            self._row_errors(table)
        for _ in range(_MAX_CASCADE):
            before = self._errors_now()
            for child, column, parent, rule in REFERENCES:
                self._reference(child, column, parent, rule)
            self._same_line()
            if self._errors_now() == before:
                break
        self._warnings(as_of)

    def _row_errors(self, name: str) -> None:
        table = TABLES[name]
        relation = self.relations[name]
        for column in table.columns:
            if not column.nullable:
                self._emit(
                    "missing_value",
                    name,
                    column.name,
                    f"t.{q(column.name)} IS NULL AND t._rid NOT IN (SELECT rid FROM problems "
                    f"WHERE table_name = {lit(name)} AND column_name = {lit(column.name)} "
                    "AND rid IS NOT NULL)",
                    value="NULL",
                    source=relation,
                )
        keys = ", ".join(q(k) for k in table.key)
        same_key = " AND ".join(f"f.{q(k)} = t.{q(k)}" for k in table.key)
        not_null = " AND ".join(f"{q(k)} IS NOT NULL" for k in table.key)
        self._emit(
            "duplicate_key",
            name,
            table.key[0],
            "t._rid IN (SELECT _rid FROM (SELECT _rid, row_number() OVER (PARTITION BY "
            f"{keys} ORDER BY _file, _line, _rid) AS n FROM {relation} WHERE {not_null}) "
            "WHERE n > 1)",
            detail=(
                f"'same ' || {lit(', '.join(table.key))} || ' as ' || COALESCE((SELECT "
                f"COALESCE(f._file || ' ' || CAST(f._line AS VARCHAR), 'an earlier row') "
                f"FROM {relation} AS f WHERE {same_key} "
                "ORDER BY f._file, f._line, f._rid LIMIT 1), 'an earlier row')"
            ),
            source=relation,
        )
        stage_columns = {
            "opportunity_d": ("stage_name",),
            "opportunity_stage_f": ("to_stage", "from_stage"),
        }
        known = ", ".join(lit(s.name) for s in self.stages.stages)
        for stage_column in stage_columns.get(name, ()):
            self._emit(
                "unknown_stage",
                name,
                stage_column,
                f"t.{q(stage_column)} IS NOT NULL AND t.{q(stage_column)} NOT IN ({known})",
                detail=(
                    f"'stage ' || {quoted(f't.{q(stage_column)}')} || "
                    + lit(
                        f" is not in the stage model ({self.stages.describe()}); map it in the "
                        "mapping's value_maps or add it to stages.yaml"
                    )
                ),
                source=relation,
            )

    def _reference(self, child: str, column: str, parent: str, rule: str) -> None:
        """`rule` when the parent row does not exist; `parent_rejected` when it exists but
        was rejected (a consequence: counted, the parent's own problem is listed)."""
        if child not in self.relations:
            return
        parent_key = TABLES[parent].key[0]
        if parent in self.relations:
            every = f"SELECT {q(parent_key)} FROM {self.relations[parent]}"
            accepted = f"SELECT {q(parent_key)} FROM {self.accepted(parent)}"
        else:
            every = accepted = f"SELECT NULL AS {q(parent_key)} WHERE FALSE"
        noun = NOUNS[parent]
        value = quoted(f"t.{q(column)}")
        # a row whose own line failed is rejected with it (line_rejected), not blamed here
        own_line_ok = f"(t._file IS NULL OR (t._file, t._line) NOT IN ({ERROR_LINES}))"
        self._emit(
            rule,
            child,
            column,
            f"t.{q(column)} IS NOT NULL AND t.{q(column)} NOT IN ({every}) AND {own_line_ok}",
            detail=f"{lit(noun)} || ' ' || {value} || {lit(f' is not in {parent}')}",
        )
        self._emit(
            "parent_rejected",
            child,
            column,
            f"t.{q(column)} IN ({every}) AND t.{q(column)} NOT IN ({accepted}) AND {own_line_ok}",
            detail=f"{lit(noun)} || ' ' || {value} || ' was rejected (see its own problem)'",
        )

    def _same_line(self) -> None:
        """A source line loads whole or not at all: reject the other rows made from it."""
        for table in self.relations:
            self._emit(
                "line_rejected",
                table,
                None,
                f"(t._file, t._line) IN ({ERROR_LINES})",
                detail=lit("another row made from this line was rejected"),
            )

    # ------------------------------------------------------------ warnings
    def _warnings(self, as_of: date) -> None:
        if "opportunity_d" in self.relations:
            opp = "opportunity_d"
            self._emit(
                "deal_without_account",
                opp,
                "sf_account_id",
                "t.sf_account_id IS NULL",
                value="''",
                detail=lit("this deal has no account"),
            )
            self._emit(
                "close_before_create",
                opp,
                "close_date",
                "t.close_date < CAST(t.created_at_ts AS DATE)",
                detail="'created ' || CAST(CAST(t.created_at_ts AS DATE) AS VARCHAR)",
            )
            closed = ", ".join(lit(s) for s in self.stages.closed_names) or "NULL"
            self._emit(
                "open_past_close_date",
                opp,
                "close_date",
                f"t.stage_name NOT IN ({closed}) AND t.close_date < {lit(as_of.isoformat())}",
                detail=(
                    f"'open (' || t.stage_name || '), ' || CAST(date_diff('day', t.close_date, "
                    f"DATE {lit(as_of.isoformat())}) AS VARCHAR) || ' days past it on ' || "
                    f"{lit(as_of.isoformat())}"
                ),
            )
        for table, column, catalog, rule in SOFT_REFERENCES:
            if table not in self.relations:
                continue
            key = TABLES[catalog].key[0]
            known = (
                f"SELECT {q(key)} FROM {self.accepted(catalog)}"
                if catalog in self.relations
                else f"SELECT NULL AS {q(key)} WHERE FALSE"
            )
            self._emit(
                rule,
                table,
                column,
                f"t.{q(column)} IS NOT NULL AND t.{q(column)} NOT IN ({known})",
                detail=(
                    f"{lit(NOUNS[catalog])} || ' ' || {quoted(f't.{q(column)}')} || "
                    f"{lit(f' is not in {catalog}')}"
                ),
            )
        if {"opportunity_d", "opportunity_stage_f"} <= set(self.relations):
            self._stale(as_of)
        NameChecker(self).run()

    def _stale(self, as_of: date) -> None:
        rule = self.stages.stale_in_stage
        segment = list(rule.segment_by)
        won = ", ".join(lit(s) for s in self.stages.names("won")) or "NULL"
        closed = ", ".join(lit(s) for s in self.stages.closed_names) or "NULL"
        day = f"DATE {lit(as_of.isoformat())}"
        end = f"TIMESTAMP {lit(datetime.combine(as_of + timedelta(days=1), time()).isoformat())}"
        seg_cols = ", ".join(f"w.{q(c)}" for c in segment)
        seg_join = " AND ".join(f"g.{q(c)} IS NOT DISTINCT FROM o.{q(c)}" for c in segment)
        seg_label = (
            " || ', ' || ".join(
                f"'{c.removesuffix('_id')} ' || COALESCE(CAST(o.{q(c)} AS VARCHAR), 'None')"
                for c in segment
            )
            or "'all deals'"
        )
        self.con.execute(
            f"""
CREATE OR REPLACE TEMP TABLE stale_in_stage AS
WITH s AS (SELECT * FROM {self.accepted("opportunity_stage_f")} WHERE started_at_ts < {end}),
last AS (SELECT opportunity_id, arg_max(to_stage, started_at_ts) AS stage FROM s GROUP BY 1),
other AS (SELECT s.opportunity_id, max(s.started_at_ts) AS t0 FROM s JOIN last USING
  (opportunity_id) WHERE s.to_stage <> last.stage GROUP BY 1),
since AS (SELECT s.opportunity_id, min(s.started_at_ts) AS since FROM s
  LEFT JOIN other USING (opportunity_id)
  WHERE s.started_at_ts > COALESCE(other.t0, TIMESTAMP '0001-01-01') GROUP BY 1),
won AS (SELECT * FROM {self.accepted("opportunity_d")}
  WHERE stage_name IN ({won}) AND closed_at_date < {day}),
spent AS (SELECT s.opportunity_id, s.to_stage, SUM(s.days_in_stage) AS days FROM s
  JOIN won USING (opportunity_id) WHERE s.days_in_stage IS NOT NULL AND s.ended_at_ts < {end}
  GROUP BY 1, 2),
overall AS (SELECT to_stage, COUNT(*) AS n, MEDIAN(days) AS med FROM spent GROUP BY 1),
seg AS (SELECT sp.to_stage{", " + seg_cols if segment else ""}, COUNT(*) AS n,
  MEDIAN(sp.days) AS med FROM spent AS sp JOIN won AS w USING (opportunity_id)
  GROUP BY sp.to_stage{", " + seg_cols if segment else ""}),
cur AS (SELECT o._rid, o.stage_name, since.since,
    date_diff('day', CAST(since.since AS DATE), {day}) AS days,
    CASE WHEN g.n >= {rule.min_won_deals} THEN {seg_label} ELSE 'all deals' END AS segment,
    CASE WHEN g.n >= {rule.min_won_deals} THEN g.n ELSE COALESCE(a.n, 0) END AS won_deals,
    CASE WHEN g.n >= {rule.min_won_deals} THEN g.med
         WHEN a.n >= {rule.min_won_deals} THEN a.med END AS median_days
  FROM {self.accepted("opportunity_d")} AS o
  JOIN last ON last.opportunity_id = o.opportunity_id AND last.stage = o.stage_name
  JOIN since ON since.opportunity_id = o.opportunity_id
  LEFT JOIN overall AS a ON a.to_stage = o.stage_name
  LEFT JOIN seg AS g ON g.to_stage = o.stage_name{" AND " + seg_join if segment else ""}
  WHERE o.stage_name NOT IN ({closed}))
SELECT *, CASE WHEN median_days IS NULL THEN {max(rule.min_days, rule.fallback_days)}
  ELSE greatest({rule.min_days}, {rule.median_multiple} * median_days) END AS stale_after
FROM cur
"""
        )
        self._emit(
            "stale_in_stage",
            "opportunity_d",
            "stage_name",
            "t._rid IN (SELECT _rid FROM stale_in_stage WHERE days > stale_after)",
            detail=(
                "(SELECT 'in ' || z.stage_name || ' for ' || CAST(z.days AS VARCHAR) || "
                "' days (since ' || CAST(CAST(z.since AS DATE) AS VARCHAR) || '); ' || "
                "CASE WHEN z.median_days IS NULL THEN 'too few won deals to compare, stale "
                "after ' || CAST(z.stale_after AS VARCHAR) || ' days' ELSE 'won deals' || "
                "CASE WHEN z.segment = 'all deals' THEN '' ELSE ' of ' || z.segment END || "
                "' spent a median of ' || CAST(CAST(round(z.median_days) AS BIGINT) AS VARCHAR)"
                " || ' days there (' || CAST(z.won_deals AS VARCHAR) || ' deals)' END "
                "FROM stale_in_stage AS z WHERE z._rid = t._rid)"
            ),
        )

    def table_rows(self, table: str) -> list[tuple[Any, ...]]:
        return self.con.execute(f"SELECT * FROM {self.accepted(table)}").fetchall()


class NameChecker:
    """Near-duplicate names: inside each catalog (accounts, products, employees), and
    references that are not in a catalog but close to a name in it ('GTXPro' vs 'GTX Pro':
    the unknown-reference problem then says which name it probably means)."""

    def __init__(self, checker: QualityChecker) -> None:
        self.checker = checker
        self.con = checker.con

    def run(self) -> None:
        for table, id_column, name_column in NAMED:
            if table not in self.checker.relations:
                continue
            names = self._names(table, id_column, name_column)
            self._within(table, name_column, names)
        for table, column, catalog, rule in (
            *[(t, c, p, r) for t, c, p, r in REFERENCES if p == "salesforce_account_d"],
            *SOFT_REFERENCES,
        ):
            self._references(table, column, catalog, rule)

    def _names(self, table: str, id_column: str, name_column: str) -> list[tuple[str, str, str]]:
        """(id, name, where) of the catalog's accepted rows."""
        rows = self.con.execute(
            f"SELECT CAST({q(id_column)} AS VARCHAR), CAST({q(name_column)} AS VARCHAR), "
            f"COALESCE(_file || ' line ' || CAST(_line AS VARCHAR), {lit(table)}) "
            f"FROM {self.checker.accepted(table)} WHERE {q(name_column)} IS NOT NULL "
            f"ORDER BY _file, _line"
        ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def _within(self, table: str, column: str, names: list[tuple[str, str, str]]) -> None:
        """Each name that equals an earlier one once normalized, or (catalogs of up to
        FUZZY_MAX_NAMES names) scores FUZZY_MIN_SCORE against it: one all-pairs matrix
        computed by rapidfuzz in C++, not a Python loop."""
        import numpy as np
        from rapidfuzz import fuzz, process

        distinct: dict[str, str] = {}  # name -> where (first occurrence)
        for _, name, where in names:
            distinct.setdefault(name, where)
        items = list(distinct)
        norms = [normalized_name(n) for n in items]
        twins: dict[int, int] = {}
        first: dict[str, int] = {}
        for i, norm in enumerate(norms):
            if norm in first:
                twins[i] = first[norm]
            first.setdefault(norm, i)
        long_enough = [i for i, n in enumerate(norms) if len(n) >= 5 and i not in twins]
        if 1 < len(long_enough) <= FUZZY_MAX_NAMES:
            scores = process.cdist(
                [norms[i] for i in long_enough],
                [norms[i] for i in long_enough],
                scorer=fuzz.ratio,
                score_cutoff=FUZZY_MIN_SCORE,
                dtype=np.uint8,
                workers=1,
            )
            for a, b in np.argwhere(np.triu(scores, k=1) > 0):  # a < b: b is the later name
                later, earlier = long_enough[int(b)], long_enough[int(a)]
                if norms[later] != norms[earlier]:
                    twins.setdefault(later, earlier)
        for i, twin in sorted(twins.items()):
            name, where = items[i], distinct[items[i]]
            self.checker.log.add(
                "near_duplicate_name",
                file=where.split(" line ")[0] if " line " in where else None,
                line=int(where.rsplit(" ", 1)[1]) if " line " in where else None,
                table=table,
                column=column,
                value=name,
                detail=f"looks like {items[twin]!r} ({distinct[items[twin]]})",
            )

    def _references(self, table: str, column: str, catalog: str, rule: str) -> None:
        """Say which catalog name an unknown reference probably means."""
        from rapidfuzz import fuzz, process

        if catalog not in self.checker.relations:
            return
        unknown = [
            r[0]
            for r in self.con.execute(
                "SELECT DISTINCT value FROM problems WHERE rule = ? AND table_name = ? AND "
                "column_name = ? AND value IS NOT NULL",
                [rule, table, column],
            ).fetchall()
        ]
        if not unknown:
            return
        id_column, name_column = next((i, n) for t, i, n in NAMED if t == catalog)
        names = self._names(catalog, id_column, name_column)
        choices: dict[str, tuple[str, str]] = {}
        for ident, name, where in names:
            choices.setdefault(normalized_name(ident), (ident, where))
            choices.setdefault(normalized_name(name), (name, where))
        keys = list(choices)
        for value in unknown:
            norm = normalized_name(value)
            match = choices.get(norm)
            # fuzzy only for names: ids that differ by a digit are different ids
            if match is None and keys and len(norm) >= 5 and not norm.isdigit():
                best = process.extractOne(norm, keys, scorer=fuzz.ratio)
                if best is not None and best[1] >= FUZZY_MIN_SCORE:
                    match = choices[best[0]]
            if match is None:
                continue
            name, where = match
            self.con.execute(
                "UPDATE problems SET detail = detail || ?, value = value WHERE rule = ? AND "
                "table_name = ? AND column_name = ? AND value = ?",
                [f"; closest: {name!r}", rule, table, column, value],
            )
            count, file, line, block = first_row(
                self.con,
                "SELECT COUNT(*), arg_min(file, line), min(line), arg_min(block, line) FROM "
                "problems WHERE rule = ? AND table_name = ? AND column_name = ? AND value = ?",
                [rule, table, column, value],
            ) or (0, None, None, None)
            self.checker.log.add(
                "near_duplicate_name",
                file=file,
                line=line,
                block=block,
                table=table,
                column=column,
                value=value,
                detail=f"looks like {name!r} ({where}); {count:,} row(s) use {value!r}",
            )


def latest_activity(con: duckdb.DuckDBPyConnection, relations: dict[str, str]) -> date | None:
    """The last day anything happened in the data: the default `as_of` of an import."""
    dated = {
        "opportunity_d": ("created_at_ts", "closed_at_date"),
        "opportunity_stage_f": ("started_at_ts",),
        "gong_call_f": ("start_ts",),
        "consumption_daily_f": ("usage_date",),
        "support_ticket_f": ("created_at_ts",),
    }
    parts = [
        f"SELECT CAST(MAX({q(c)}) AS DATE) AS d FROM {relations[t]}"
        for t, cols in dated.items()
        if t in relations
        for c in cols
    ]
    if not parts:
        return None
    row = first_row(con, f"SELECT MAX(d) FROM ({' UNION ALL '.join(parts)})")
    return row[0] if row and row[0] is not None else None


# One problem per line, rule, value and message: a date column read into two tables is one
# bad value for the person who fixes the file.
_DISTINCT_PROBLEMS = (
    "SELECT * FROM problems QUALIFY file IS NULL OR line IS NULL OR row_number() OVER "
    "(PARTITION BY rule, file, line, value, detail ORDER BY table_name, column_name) = 1"
)


def problem_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute(f"SELECT rule, COUNT(*) FROM ({_DISTINCT_PROBLEMS}) GROUP BY rule")
    return {str(r): int(n) for r, n in rows.fetchall()}


def first_problems(con: duckdb.DuckDBPyConnection, limit: int) -> Sequence[tuple[Any, ...]]:
    """Errors first, then by file and line; consequences of a listed error are not listed."""
    hidden = ", ".join(lit(r) for r in CONSEQUENCES)
    return con.execute(
        "SELECT severity, rule, table_name, file, line, block, column_name, value, detail, key "
        f"FROM ({_DISTINCT_PROBLEMS}) WHERE rule NOT IN ({hidden}) "
        "ORDER BY severity = 'warning', file NULLS LAST, line NULLS LAST, rule, table_name, key "
        "LIMIT ?",
        [limit],
    ).fetchall()
