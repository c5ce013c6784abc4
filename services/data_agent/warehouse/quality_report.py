"""The data-quality report people read: counts per rule, then the problems themselves, each
with file, line (as the file shows it), column, value and what is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.data_agent.warehouse.quality import CONSEQUENCES, ERROR, RULES, WARNING

DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class ShownProblem:
    severity: str
    rule: str
    location: str
    column: str | None
    value: str | None
    message: str
    row_level: bool = True  # a problem of one row shows its value (empty as '')

    def render(self) -> str:
        where = self.location
        if self.column is not None:
            where += f", column {self.column}"
            if self.row_level or self.value is not None:
                where += " = " + ("''" if self.value is None else repr(self.value[:80]))
        return f"{where}: {self.message} [{self.rule}]"


@dataclass
class QualityReport:
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[ShownProblem] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    as_of: date | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def errors(self) -> int:
        return sum(n for r, n in self.counts.items() if RULES[r].severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(n for r, n in self.counts.items() if RULES[r].severity == WARNING)

    @property
    def total(self) -> int:
        return self.errors + self.warnings

    def count(self, rule: str) -> int:
        return self.counts.get(rule, 0)

    def render(self) -> str:
        as_of = f" as of {self.as_of.isoformat()}" if self.as_of else ""
        lines = [
            f"Data-quality report{as_of}: {self.errors:,} error(s), {self.warnings:,} warning(s)"
        ]
        if self.rows:
            lines.append("  rows checked: " + ", ".join(f"{t} {n:,}" for t, n in self.rows.items()))
        if self.counts:
            lines.append(f"  {'rule':<22} {'severity':<8} {'count':>9}  what")
            ordered = sorted(self.counts, key=lambda r: (RULES[r].severity != ERROR, r))
            for rule in ordered:
                spec = RULES[rule]
                lines.append(
                    f"  {rule:<22} {spec.severity:<8} {self.counts[rule]:>9,}  {spec.title}"
                )
        if self.problems:
            listed = self.total - sum(self.counts.get(r, 0) for r in CONSEQUENCES)
            more = listed - len(self.problems)
            head = f"Problems (first {len(self.problems):,} of {listed:,}"
            head += f"; --limit {listed} shows all)" if more > 0 else ")"
            lines.append(head + ":")
            lines += [f"  {p.severity:<7} {p.render()}" for p in self.problems]
        return "\n".join(lines)


def shown_problems(
    rows: Sequence[tuple[Any, ...]],
    column_labels: dict[tuple[str, int, str], str],
    line_words: dict[str, str],
) -> list[ShownProblem]:
    """Rows of `quality.first_problems` as people read them: the column as the file names
    it, `file line N` (or `file row N` for Parquet), else the table and the row's key."""
    shown = []
    for severity, rule, table, file, line, block, column, value, detail, key in rows:
        if file is not None and line is not None:
            location = f"{file} {line_words.get(file, 'line')} {line}"
        elif file is not None:
            location = file
        else:
            location = f"{table} {key}" if table else "warehouse"
        label = column
        if column is not None and table is not None and block is not None:
            label = column_labels.get((table, int(block), column), column)
        shown.append(
            ShownProblem(
                severity,
                rule,
                location,
                label,
                None if value is None else str(value),
                detail or RULES[rule].title,
                row_level=line is not None or key is not None,
            )
        )
    return shown
