"""A row-store copy of the embedded warehouse's subject tables, for the data agent's reads.

Why: DuckDB is a column store. Each statement pays a fixed cost to parse, bind, plan and
materialise every selected column: 0.4-1.2 ms to read one subject's rows of one table,
whatever their number. A lightly loaded data agent reads one subject per batch, with 7-8
such statements: ~10 ms of CPU per flow, the largest single cost of a flow at light load.
SQLite, a row store, answers the same statements from an index on the subject in 10-50 us
(a year of daily usage: ~0.4 ms). See docs/warehouse-replica.md.

What:
- `open_replica(source, source_path, folder)` copies the tables the subject reads use
  (`SERVED_TABLES`) from the open DuckDB connection into an SQLite file under `folder`,
  indexed on the subject columns, or reuses the copy made from the same source file
  (same path, size and modification time, same schema).
- `ReplicatedWarehouse` is a `Warehouse`: the per-subject and set-based subject reads
  (`SERVED_QUERIES`) run on the copy; every other query (listings, warehouse-wide
  aggregates, meta) runs on the source. It also answers accounts' usage as series from the
  copy's packed usage (`usage_series`, `packed_usage.py`), a year of an account in one row.

The copy returns what DuckDB returns, value for value and type for type: dates, timestamps
and booleans are stored as text or integers and converted back by their declared column type;
NULLs sort last, as in DuckDB; DOUBLE keeps its exact binary value. SQLite cannot store NaN
(it becomes NULL), so a source with NaN in a served table gets no copy: `ReplicaUnavailable`.
The source file is opened read-only by the data agent, which never sees a change made to it
after it started; the copy is made from that same connection, so both answer alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import structlog

from contracts.series import UsageSeries
from services.common.processes import process_running
from services.data_agent.warehouse import queries as Q
from services.data_agent.warehouse.base import (
    DEFAULT_CHUNK_ROWS,
    Columns,
    Params,
    Row,
    Warehouse,
    WarehouseError,
)
from services.data_agent.warehouse.packed_usage import PackingCancelled, pack_usage, read_packed
from services.data_agent.warehouse.schema import ColumnType, Table, table

#: How long `close` waits for a copy being made to stop before closing the source.
CLOSE_WAIT_S = 10.0

#: Bumped when the copy's layout changes: a copy of another format is made again.
REPLICA_FORMAT = 3

#: Tables the subject reads use, and the index columns of each (subject first, then the order
#: of the subject's rows).
SERVED_TABLES: dict[str, tuple[tuple[str, ...], ...]] = {
    "salesforce_account_d": (("sf_account_id",),),
    "opportunity_d": (("opportunity_id",),),
    "employee_d": (("sf_user_id",),),
    "product_d": (("product_id",),),
    "contact_d": (("sf_account_id", "contact_id"),),
    "opportunity_stage_f": (("opportunity_id", "started_at_ts"),),
    "gong_call_f": (("opportunity_id", "start_ts"), ("sf_account_id", "start_ts")),
    "consumption_daily_f": (("sf_account_id", "usage_date"),),
    "support_ticket_f": (("sf_account_id", "created_at_ts"),),
    "agreement_f": (("sf_account_id", "start_date"),),
    "billing_event_f": (("sf_account_id", "event_date"),),
}

#: The queries the copy answers: one subject's rows of one table, and their set-based twins.
SERVED_QUERIES: frozenset[str] = frozenset(
    {
        q.name
        for q in (
            Q.ACCOUNT_BY_ID,
            Q.OPPORTUNITY_BY_ID,
            Q.EMPLOYEE_BY_ID,
            Q.PRODUCT_BY_ID,
            Q.CONTACTS_BY_ACCOUNT,
            Q.STAGE_HISTORY_BY_OPPORTUNITY,
            Q.CALLS_BY_OPPORTUNITY,
            Q.CALLS_BY_ACCOUNT,
            Q.USAGE_BY_ACCOUNT,
            Q.TICKETS_BY_ACCOUNT,
            Q.AGREEMENTS_BY_ACCOUNT,
            Q.BILLING_BY_ACCOUNT,
        )
    }
    | set(Q.SET_QUERIES)
)

# Fixed width, so text order is time order (isoformat drops zero microseconds).
_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

# The converters of the copy's declared types (schema.py, engine "sqlite").
sqlite3.register_converter("revops_date", lambda b: date.fromisoformat(b.decode()))
sqlite3.register_converter("revops_timestamp", lambda b: datetime.fromisoformat(b.decode()))
sqlite3.register_converter("revops_bool", lambda b: b != b"0")


class ReplicaUnavailable(WarehouseError):
    """The source cannot be copied faithfully (e.g. NaN in a served table)."""


class _Source(Protocol):
    """What the copy is made from: an open DuckDB warehouse (its connection)."""

    @property
    def connection(self) -> Any: ...


def _stored(value: Any, kind: ColumnType) -> Any:
    if value is None:
        return None
    if kind is ColumnType.TIMESTAMP:
        return value.strftime(_TIMESTAMP_FORMAT)
    if kind is ColumnType.DATE:
        return value.isoformat()
    if kind is ColumnType.BOOLEAN:
        return int(value)
    return value


class ReplicaCancelled(WarehouseError):
    """The service stopped while its copy was being made."""


def _copy_table(
    source: _Source, target: sqlite3.Connection, spec: Table, cancelled: threading.Event
) -> None:
    names = spec.column_names
    target.execute(spec.ddl("sqlite"))  # types named for the converters registered above
    insert = f"INSERT INTO {spec.name} VALUES ({', '.join('?' * len(names))})"
    kinds = [c.type for c in spec.columns]
    doubles = [i for i, k in enumerate(kinds) if k is ColumnType.DOUBLE]
    cursor = source.connection.cursor().execute(f"SELECT {', '.join(names)} FROM {spec.name}")
    while rows := cursor.fetchmany(DEFAULT_CHUNK_ROWS):
        if cancelled.is_set():
            raise ReplicaCancelled(f"copy of {spec.name} stopped")
        for row in rows:
            for i in doubles:
                value = row[i]
                if value is not None and math.isnan(value):
                    raise ReplicaUnavailable(
                        f"{spec.name}.{names[i]} holds NaN, which SQLite cannot store: "
                        "subject reads stay on the warehouse"
                    )
        target.executemany(
            insert, [tuple(_stored(v, k) for v, k in zip(r, kinds, strict=True)) for r in rows]
        )
    for i, index in enumerate(SERVED_TABLES[spec.name]):
        target.execute(f"CREATE INDEX {spec.name}_{i} ON {spec.name} ({', '.join(index)})")


def replica_key(source_path: Path) -> str:
    """Names the copy of one state of the source file (and of the copy's layout)."""
    parts = [f"format={REPLICA_FORMAT}", str(source_path.resolve())]
    for path in (source_path, source_path.with_name(source_path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    for name in SERVED_TABLES:
        parts.append(";".join(f"{c.name}:{c.type}" for c in table(name).columns))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def open_replica(
    source: _Source, source_path: Path, folder: Path, cancelled: threading.Event | None = None
) -> Path:
    """The copy of `source` (opened from `source_path`) in `folder`: made now, or reused when
    one of the same source state exists. Copies of other states are removed. Setting
    `cancelled` stops a copy being made (`ReplicaCancelled`; nothing is left behind)."""
    cancelled = cancelled or threading.Event()
    folder.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(folder)
    path = folder / f"{replica_key(source_path)}.sqlite"
    if not path.exists():
        building = path.with_suffix(f".building-{os.getpid()}")
        building.unlink(missing_ok=True)
        target = sqlite3.connect(building, isolation_level=None)
        try:
            target.execute("PRAGMA journal_mode=OFF")  # a copy: made whole, or made again
            target.execute("PRAGMA synchronous=OFF")
            target.execute("BEGIN")
            for name in SERVED_TABLES:
                _copy_table(source, target, table(name), cancelled)
            try:
                pack_usage(target, cancelled)
            except PackingCancelled as exc:
                raise ReplicaCancelled(str(exc)) from exc
            target.execute("COMMIT")
        except BaseException:
            target.close()
            building.unlink(missing_ok=True)
            raise
        target.close()
        os.replace(building, path)  # other processes see the whole copy or none
    for other in folder.glob("*.sqlite"):
        if other != path:  # an older state; a process still reading it keeps its handle
            other.unlink(missing_ok=True)
    return path


def _remove_abandoned(folder: Path) -> None:
    """Copies a process left half made when it was killed (`<key>.building-<pid>`)."""
    for building in folder.glob("*.building-*"):
        pid = building.suffix.removeprefix(".building-")
        if pid.isdigit() and not process_running(int(pid)):
            building.unlink(missing_ok=True)


_CAST_OR_MARK = re.compile(r"CAST\(\?\s+AS\s+(DATE|TIMESTAMP)\)|\?")


@lru_cache(maxsize=512)
def translate(sql: str) -> tuple[str, tuple[str | None, ...]]:
    """A served query's DuckDB text for SQLite: `CAST(? AS DATE|TIMESTAMP)` becomes a bare
    parameter whose value is stored as the copy stores that type (the kinds, one per
    parameter), and every ORDER BY term sorts NULLs last, as DuckDB does."""
    kinds: list[str | None] = []

    def mark(match: re.Match[str]) -> str:
        kinds.append(match.group(1))
        return "?"

    text = _CAST_OR_MARK.sub(mark, sql)
    head, found, order = text.rpartition(" ORDER BY ")
    if found:
        terms = [term.strip() for term in order.split(",")]
        text = f"{head} ORDER BY " + ", ".join(f"{term} NULLS LAST" for term in terms)
    return text, tuple(kinds)


def _bound(value: Any, kind: str | None) -> Any:
    if kind == "TIMESTAMP" or (kind is None and isinstance(value, datetime)):
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        return value.strftime(_TIMESTAMP_FORMAT) if isinstance(value, datetime) else value
    if kind == "DATE" or (kind is None and isinstance(value, date)):
        if isinstance(value, datetime):
            value = value.date()
        return value.isoformat() if isinstance(value, date) else value
    if isinstance(value, bool):
        return int(value)
    return value


class ReplicatedWarehouse:
    """The source warehouse, with its subject reads answered by a copy once it exists.

    `make_copy` (e.g. `open_replica`) runs on a thread of its own, so a service starts and
    serves from the source at once: a 10,000-account warehouse takes ~30 s to copy the first
    time. Until the copy is ready, or if it cannot be made (the log says why), every read
    goes to the source, as with the copy turned off."""

    def __init__(self, source: Warehouse, make_copy: Callable[[threading.Event], Path]) -> None:
        self.source = source
        self.engine = source.engine
        self.max_bound_ids = source.max_bound_ids
        self.replica_path: Path | None = None
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._maker = threading.Thread(
            target=self._make, args=(make_copy,), name="warehouse-replica", daemon=True
        )
        self._maker.start()

    def _make(self, make_copy: Callable[[threading.Event], Path]) -> None:
        log = structlog.get_logger("warehouse")
        started = time.monotonic()
        try:
            path = make_copy(self._stopping)
        except ReplicaCancelled:
            return
        except (ReplicaUnavailable, OSError, sqlite3.Error) as exc:
            # Slower, not wrong: reads stay on the source, as with the copy turned off.
            log.warning("warehouse_replica_off", reason=str(exc))
            return
        except Exception:
            log.exception("warehouse_replica_failed")
            return
        self.replica_path = path
        self._ready.set()
        log.info(
            "warehouse_replica_ready", path=str(path), seconds=round(time.monotonic() - started, 2)
        )

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """True once subject reads go to the copy (False: not yet, or never)."""
        self._maker.join(timeout_s)
        return self._ready.is_set()

    def _serves(self, query: Q.Query) -> bool:
        """Whether the copy answers `query` on this thread. A copy that cannot be opened (a
        newer process replaced it, the disk went away) sends every later read to the source:
        slower, not wrong."""
        if query.name not in SERVED_QUERIES or not self._ready.is_set():
            return False
        if getattr(self._local, "conn", None) is None:
            try:
                self._local.conn = self._open()
            except sqlite3.Error as exc:
                self._ready.clear()
                structlog.get_logger("warehouse").warning(
                    "warehouse_replica_off", reason=f"cannot open {self.replica_path}: {exc}"
                )
                return False
        return True

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"file:{self.replica_path}?mode=ro",
            uri=True,
            detect_types=sqlite3.PARSE_DECLTYPES,
            isolation_level=None,
            # used by the thread that opened it only; `close` may come from another one
            check_same_thread=False,
        )
        with self._lock:
            self._opened.append(conn)
        return conn

    def _execute(self, query: Q.Query, params: Params | None) -> sqlite3.Cursor:
        sql, values = query.bind(params)
        text, kinds = translate(sql)
        bound = [_bound(v, k) for v, k in zip(values, kinds, strict=True)]
        conn: sqlite3.Connection = self._local.conn  # opened by `_serves`
        try:
            return conn.execute(text, bound)
        except sqlite3.Error as exc:
            raise WarehouseError(
                f"query {query.name} failed on the warehouse replica: {exc}"
            ) from exc

    def fetch_all(self, query: Q.Query, params: Params | None = None) -> list[Row]:
        if not self._serves(query):
            return self.source.fetch_all(query, params)
        cur = self._execute(query, params)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def fetch_chunks(
        self, query: Q.Query, params: Params | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> Iterator[list[Row]]:
        if not self._serves(query):
            yield from self.source.fetch_chunks(query, params, chunk_rows)
            return
        cur = self._execute(query, params)
        names = [d[0] for d in cur.description or []]
        while batch := cur.fetchmany(chunk_rows):
            yield [dict(zip(names, r, strict=True)) for r in batch]

    def usage_series(
        self, account_ids: Sequence[str], after: date, as_of: date
    ) -> dict[str, UsageSeries]:
        """The accounts' usage after `after` up to `as_of` from the copy's packed usage
        (`packed_usage.py`), for those it holds packed; {} until the copy serves."""
        if not self._serves(Q.USAGE_BY_ACCOUNT):
            return {}
        try:
            return read_packed(self._local.conn, account_ids, after, as_of)
        except sqlite3.Error as exc:
            raise WarehouseError(f"packed usage failed on the warehouse replica: {exc}") from exc

    def fetch_columns(self, query: Q.Query, params: Params | None = None) -> Columns:
        if not self._serves(query):
            return self.source.fetch_columns(query, params)
        cur = self._execute(query, params)
        raw = cur.fetchall()
        names = [d[0] for d in cur.description or []]
        columns: Sequence[Sequence[Any]] = (
            list(zip(*raw, strict=True)) if raw else [()] * len(names)
        )
        return dict(zip(names, columns, strict=True))

    def close(self) -> None:
        self._stopping.set()  # a copy being made stops at its next chunk of rows
        self._maker.join(CLOSE_WAIT_S)
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self.source.close()
