"""Reading the CSV files of `revops anomalies score` / `evaluate`, with one-line errors.

A file is comma- or semicolon-separated (whichever splits the header into more columns),
UTF-8 (a byte-order mark is allowed), with a header row. Problems a user can fix are
raised as `InputError` naming the file, and the row (1 = the header) and column where they
apply; the CLI prints that one line and exits with status 2.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DELIMITERS = (",", ";", "\t")


class InputError(ValueError):
    """A problem with an input file, stated in one line."""


@dataclass(frozen=True)
class Table:
    path: Path
    header: list[str]
    rows: list[list[str]]
    delimiter: str

    def column(self, name: str) -> list[str]:
        k = self.header.index(name)
        return [row[k] if k < len(row) else "" for row in self.rows]

    def require(self, *names: str) -> None:
        missing = [n for n in names if n not in self.header]
        if missing:
            raise InputError(
                f"{self.path}: row 1: no column {', '.join(repr(n) for n in missing)} "
                f"(the header has {', '.join(repr(h) for h in self.header)})"
            )


def read_table(path: Path) -> Table:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"{path}: empty file (a header row is expected)")
    delimiter = max(DELIMITERS, key=lambda d: len(lines[0].split(d)))
    try:
        rows = list(csv.reader(lines, delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV file: {exc}") from None
    header = [h.strip() for h in rows[0]]
    body = [row for row in rows[1:] if row and any(cell.strip() for cell in row)]
    return Table(Path(path), header, body, delimiter)


def parse_timestamp(text: str) -> float:
    """Epoch seconds (UTC) of an ISO date/date-time or a number; NaN when unparsable."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return math.nan
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_number(text: str) -> float:
    """The number in `text`; NaN for an empty cell or a spelled missing value; raises
    ValueError for anything else."""
    text = text.strip()
    if text.lower() in ("", "nan", "na", "n/a", "null", "none"):
        return math.nan
    value = float(text)
    if math.isinf(value):
        raise ValueError(text)
    return value


def numeric_column(table: Table, name: str) -> tuple[NDArray[np.float64], list[int]]:
    """The column as floats (NaN = missing) and the indexes of rows that held no number.

    A column in which no row holds a number is an error (a wrong column, not bad rows).
    """
    cells = table.column(name)
    values = np.full(len(cells), math.nan)
    bad: list[int] = []
    for k, cell in enumerate(cells):
        try:
            values[k] = parse_number(cell)
        except ValueError:
            bad.append(k)
    if bad and not np.isfinite(values).any():
        first = bad[0]
        raise InputError(
            f"{table.path}: row {first + 2}: column {name!r}: {cells[first]!r} is not a number "
            "(no row of the column holds a number)"
        )
    return values, bad
