"""Accounts' daily usage in the warehouse copy as one row per account, each metric packed.

Why: an account's usage is a year of daily rows. Read from the copy as rows, SQLite and the
`sqlite3` module build a Python object per value (365 rows of nine columns), and
`convert.to_usage_series` turns the columns into the series: ~0.5 ms per account, the largest
single read of a dataset at light load and a fifth of the data agent's CPU at saturation. Kept
as the series itself (one row per account, each metric the bytes of its float64 values) it is
one indexed row and a slice per metric: ~0.04 ms.

What:
- `pack_usage(copy)` runs once the copy's tables are written: for every account of
  `consumption_daily_f`, the series `convert.to_usage_series` makes of all its rows (the day
  of its first row, the number of days to its last, each metric of USAGE_METRICS as native
  float64 bytes: NaN on a day without a row, 0 for a NULL measurement) goes into
  `usage_packed`. An account whose rows make no series (two rows for one day, an infinite
  value) is kept with no first day: its reads take the usage query, which refuses the window
  asked for only if the fault is inside it.
- `read_packed(copy, accounts, after, as_of)` answers what the usage query (the days after
  `after` up to `as_of`) and `to_usage_series` answer: the stored days in the window, trimmed
  to the first and the last day with a row (a day with a row is never NaN: NULL is stored as
  0, and a source with NaN gets no copy). Accounts without rows get the empty series; the
  accounts kept unpacked are left out of the answer.

Plain Python and `array`: the data agent does not load numpy (see contracts/series.py).
The bytes are in the machine's order; the copy never leaves the machine that made it.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from itertools import groupby
from operator import itemgetter
from typing import Any

from contracts.series import USAGE_METRICS, DatasetFormatError, UsageSeries
from services.data_agent.warehouse import convert
from services.data_agent.warehouse.base import DEFAULT_CHUNK_ROWS

PACKED_TABLE = "usage_packed"
_SIZE = array("d").itemsize  # bytes per value
_SOURCE_TABLE = "consumption_daily_f"


class PackingCancelled(Exception):
    """The service stopped while the usage was being packed."""


def pack_usage(copy: sqlite3.Connection, cancelled: threading.Event) -> int:
    """Write `usage_packed` from the copy's `consumption_daily_f`; returns the accounts
    packed (those kept unpacked not counted)."""
    metrics = ", ".join(f"{m} BLOB" for m in USAGE_METRICS)
    copy.execute(
        f"CREATE TABLE {PACKED_TABLE} (sf_account_id TEXT PRIMARY KEY, "
        f"first_day INTEGER, days INTEGER, {metrics})"
    )
    rows = copy.execute(
        f"SELECT sf_account_id, usage_date, {', '.join(USAGE_METRICS)} FROM {_SOURCE_TABLE} "
        "ORDER BY sf_account_id, usage_date"  # the copy's index: no sort
    )
    insert = f"INSERT INTO {PACKED_TABLE} VALUES (?, ?, ?, {', '.join('?' * len(USAGE_METRICS))})"
    packed = 0
    pending: list[tuple[Any, ...]] = []
    for account, account_rows in groupby(_streamed(rows, cancelled), key=itemgetter(0)):
        entry = _packed_row(str(account), list(account_rows))
        packed += entry[1] is not None
        pending.append(entry)
        if len(pending) >= 1_000:
            copy.executemany(insert, pending)
            pending.clear()
    copy.executemany(insert, pending)
    return packed


def _streamed(cursor: sqlite3.Cursor, cancelled: threading.Event) -> Iterator[tuple[Any, ...]]:
    while chunk := cursor.fetchmany(DEFAULT_CHUNK_ROWS):
        if cancelled.is_set():
            raise PackingCancelled("the usage was being packed")
        yield from chunk


def _packed_row(account: str, rows: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """One account's row of `usage_packed` from its usage rows (account, day text, metrics)."""
    columns = list(zip(*rows, strict=True))
    by_name: dict[str, Sequence[Any]] = {"usage_date": [date.fromisoformat(d) for d in columns[1]]}
    by_name.update(zip(USAGE_METRICS, columns[2:], strict=True))
    try:
        series = convert.to_usage_series(by_name, account)
    except DatasetFormatError:
        return (account, None, None, *([None] * len(USAGE_METRICS)))
    assert series.start is not None  # an account here has rows
    blobs = [array("d", series.values(m)).tobytes() for m in USAGE_METRICS]
    return (account, series.start.toordinal(), series.days, *blobs)


def read_packed(
    copy: sqlite3.Connection, accounts: Sequence[str], after: date, as_of: date
) -> dict[str, UsageSeries]:
    """The series of `accounts` for the days after `after` up to `as_of`, as the usage query
    gives them; an account kept unpacked is not in the answer (read its rows)."""
    wanted = list(dict.fromkeys(accounts))
    if not wanted:
        return {}
    stored = {
        row[0]: row
        for row in copy.execute(
            f"SELECT sf_account_id, first_day, days, {', '.join(USAGE_METRICS)} "
            f"FROM {PACKED_TABLE} WHERE sf_account_id IN ({', '.join('?' * len(wanted))})",
            wanted,
        )
    }
    first_wanted, last_wanted = after.toordinal() + 1, as_of.toordinal()
    answer: dict[str, UsageSeries] = {}
    for account in wanted:
        row = stored.get(account)
        if row is None:  # no usage rows at all
            answer[account] = UsageSeries.empty()
        elif row[1] is not None:
            answer[account] = _window(row[1], row[2], row[3:], first_wanted, last_wanted)
    return answer


def _window(
    first_day: int, days: int, blobs: Iterable[bytes], first_wanted: int, last_wanted: int
) -> UsageSeries:
    lo = max(first_wanted, first_day) - first_day
    hi = min(last_wanted, first_day + days - 1) - first_day + 1
    if hi <= lo:
        return UsageSeries.empty()
    values = [array("d", blob[lo * _SIZE : hi * _SIZE]).tolist() for blob in blobs]
    rows_on = values[0]  # a day has a row iff its values are not NaN (in every metric alike)
    start = next((i for i, v in enumerate(rows_on) if not math.isnan(v)), None)
    if start is None:
        return UsageSeries.empty()
    end = len(rows_on) - next(i for i, v in enumerate(reversed(rows_on)) if not math.isnan(v))
    if start or end < len(rows_on):
        values = [v[start:end] for v in values]
    return UsageSeries(
        date.fromordinal(first_day + lo + start),
        end - start,
        dict(zip(USAGE_METRICS, values, strict=True)),
    )
