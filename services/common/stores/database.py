"""The one interface every state store is written against: a database with short write
transactions, consistent reads, and the few SQL phrases the two engines spell differently.

Two engines sit behind it (services/common/stores/sqlite.py, services/common/stores/
postgres.py). Repositories write their SQL once, with `?` placeholders and
`INSERT ... ON CONFLICT`, which both engines understand; where the spelling differs (JSON
paths, row locks) they ask the database's `Dialect`. So the domain code never knows which
engine runs.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

# Values per `IN (...)` list: far below SQLite's bound-parameter limit (32766 since 3.32)
# and PostgreSQL's (65535).
LOOKUP_CHUNK = 500


class StoreUnavailableError(RuntimeError):
    """The database cannot be reached (server down, connection lost, pool exhausted). The
    work was not stored: the caller waits and tries again, it never counts as done."""


class TransactionAbortedError(RuntimeError):
    """A nested step failed and its savepoint could not be rolled back, so the enclosing
    transaction cannot commit what the other steps did: it is rolled back whole."""


_PAST_DEFERRED = "/* past deferred "


def past_deferred(table: str) -> str:
    """Starts a statement that names `table` but cannot need its deferred rows
    (`Database.insert_later`): they are not sent ahead of it, so they keep going out
    together. Deferred writes of every other table it names still go first."""
    return f"{_PAST_DEFERRED}{table} */ "


class BatchNotAtomicError(RuntimeError):
    """A step of an `all_at_once` batch failed (or its deferred writes did): the batch is
    rolled back whole, for its caller to run it again record by record."""


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a repository may call inside a transaction (sqlite3.Connection fits it as is)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


@dataclass(frozen=True)
class Dialect:
    """SQL the engines spell differently."""

    name: str
    # Appended to a SELECT that reads rows it will update: a row lock in PostgreSQL, where
    # writers run concurrently; nothing in SQLite, whose write transaction holds the file lock.
    for_update: str
    # The same, skipping rows another transaction holds (outbox claims).
    for_update_skip_locked: str
    # Reads (name, type) of the columns of the table `?` names, where values bound into a
    # multi-row UPDATE need casts to their columns' types (None: the engine needs none).
    column_types_sql: str | None = None

    def json_text(self, column: str, *path: str) -> str:
        """The text at `path` inside the JSON text `column`."""
        if self.name == "postgresql":
            return f"({column}::jsonb #>> '{{{','.join(path)}}}')"
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def contains(self, column: str) -> str:
        """A condition with one `?`: the text `column` holds that text literally."""
        if self.name == "postgresql":
            return f"strpos({column}, ?) > 0"
        return f"instr({column}, ?) > 0"

    def not_indexed(self, table: str) -> str:
        """`table` (with its alias) read by a scan: SQLite's planner would otherwise probe an
        index once per row where one pass over the table is cheaper; PostgreSQL's planner
        weighs both itself."""
        return f"{table} NOT INDEXED" if self.name == "sqlite" else table

    def unindexed(self, expression: str) -> str:
        """`expression`, kept off its indexes (SQLite's unary `+`) so the planner reads the
        rows in an index order it can stop early in; PostgreSQL plans by costs instead."""
        return f"+{expression}" if self.name == "sqlite" else expression

    def contains_text(self, column: str) -> str:
        """A condition with two `?`: a `%text%` pattern matched in any case (served by a
        trigram index: SQLite's FTS5 `trigram` table, PostgreSQL's pg_trgm), then the
        lower-cased text, which `column` lower-cased must hold literally (the pattern's `%`
        and `_` match anything)."""
        if self.name == "postgresql":
            return f"{column} ILIKE ? AND strpos(lower({column}), ?) > 0"
        return f"{column} LIKE ? AND instr(lower({column}), ?) > 0"


SQLITE = Dialect("sqlite", for_update="", for_update_skip_locked="")
POSTGRESQL = Dialect(
    "postgresql",
    for_update=" FOR UPDATE",
    for_update_skip_locked=" FOR UPDATE SKIP LOCKED",
    column_types_sql=(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = CAST(? AS regclass) AND attnum > 0 AND NOT attisdropped"
    ),
)


class Database(ABC):
    """A database shared by every replica of a service (PostgreSQL) or every process on the
    host (SQLite). `transaction()` nests: inside another transaction of the same thread it
    is a savepoint, so a service step (or a whole batch of them, services/common/stores/
    batch.py) can make several repository calls one atomic unit with one commit, while each
    call still undoes its own writes when it fails. `reader()` inside a transaction simply
    runs in it: a read has nothing to undo, so it costs no savepoint round trips (a read
    that fails aborts up to the enclosing savepoint, which its caller's block rolls back)."""

    dialect: Dialect
    # What a unique-constraint violation raises (a repository retries a lost race on it).
    integrity_error: tuple[type[Exception], ...]

    def __init__(self) -> None:
        self._local = threading.local()
        self._types: dict[str, dict[str, str]] = {}  # `_column_types`, per table

    @property
    def database_name(self) -> str:
        return self.dialect.name

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _acquire(self) -> Connection:
        """A connection for an outermost transaction of this thread."""

    @abstractmethod
    def _release(self, conn: Connection, broken: bool) -> None:
        """The outermost transaction ended (`broken`: its connection may be unusable)."""

    _BEGIN_WRITE = "BEGIN"
    # None: a reader outside any transaction runs each statement on its own (autocommit),
    # saving the BEGIN and COMMIT round trips of a server engine.
    _BEGIN_READ: str | None = "BEGIN"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (in SQLite it holds the write lock from its first statement)."""
        with self._in(self._BEGIN_WRITE, nested_savepoint=True) as conn:
            yield conn

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """Reads; inside a transaction they see that transaction's own writes."""
        with self._in(self._BEGIN_READ, nested_savepoint=False) as conn:
            yield conn

    # True: a one-statement write outside any transaction runs on its own (autocommit).
    _AUTOCOMMIT_ONE_STATEMENT = False

    @contextmanager
    def one_statement(self) -> Iterator[Connection]:
        """A write of exactly ONE statement, as its own transaction: a server engine runs it
        without BEGIN and COMMIT (a lone statement is atomic and commits by itself), saving
        their round trips and CPU. Inside a transaction it is a nested one (a savepoint),
        like `transaction()`. Never run two statements in it: outside a transaction they
        would commit separately."""
        begin = None if self._AUTOCOMMIT_ONE_STATEMENT else self._BEGIN_WRITE
        with self._in(begin, nested_savepoint=True) as conn:
            yield conn

    @contextmanager
    def _in(self, begin: str | None, nested_savepoint: bool) -> Iterator[Connection]:
        depth: int = getattr(self._local, "depth", 0)
        in_tx: bool = getattr(self._local, "in_tx", False)
        try:
            conn: Connection = self._local.tx_conn if depth else self._acquire()
        except Exception as exc:
            self._raise_if_unavailable(exc)
            raise
        # In a flat batch (`all_at_once`) a nested block is no savepoint: the first failure
        # dooms the whole batch, which its caller then runs again record by record.
        flat = in_tx and getattr(self._local, "flat", None) is not None
        savepoint = f"nested_{depth}" if in_tx and nested_savepoint and not flat else None
        opens = not in_tx and begin is not None  # this block owns the transaction
        if opens:
            self._local.undo_failed = False
            self._local.memo = {}
            self._local.flat = None
        try:
            if savepoint:
                self._savepoint_command(conn, f"SAVEPOINT {savepoint}")
            elif opens:
                assert begin is not None
                conn = self._begin(conn, begin)
        except BaseException as exc:
            self._raise_if_unavailable(exc)
            raise
        self._local.depth, self._local.tx_conn = depth + 1, conn
        self._local.in_tx = in_tx or opens
        try:
            yield conn
            if savepoint:
                self._savepoint_command(conn, f"RELEASE {savepoint}")
            elif opens:
                if self._local.undo_failed:
                    # PostgreSQL would answer COMMIT of an aborted transaction with a silent
                    # ROLLBACK: the caller would take undone work for stored.
                    raise TransactionAbortedError(
                        f"{self.database_name}: a failed step could not be rolled back to its "
                        "savepoint; the whole transaction is rolled back"
                    )
                self._command(conn, "COMMIT")
        except BaseException as exc:
            if flat:  # even when a caller catches it, the batch must not commit
                self._local.flat.failed = True
            memo = getattr(self._local, "memo", None)
            if memo:  # rolled-back writes and row locks: what it remembered may be gone
                memo.clear()
            undo_failed = self._undo(conn, savepoint, opens)
            if undo_failed and savepoint:
                self._local.undo_failed = True
            broken = undo_failed or self._unavailable(exc)
            if not depth:
                self._release(conn, broken=broken)
            self._raise_if_unavailable(exc)
            raise
        finally:
            self._local.depth, self._local.in_tx = depth, in_tx
            if opens:
                self._local.memo = None
                self._local.flat = None
            if not depth:
                self._local.tx_conn = None
        if not depth:
            self._release(conn, broken=False)

    @contextmanager
    def all_at_once(self) -> Iterator[Connection]:
        """A write transaction for a whole batch, run optimistically: no savepoint inside it,
        and the writes that `insert_later` / `upsert_later` / `write_later` defer go out
        set-based (one multi-row INSERT per table, one `UPDATE ... FROM (VALUES ...)` per
        table and set of columns) before COMMIT. A failure of
        any nested block, even one its caller caught, raises `BatchNotAtomicError` and
        rolls back everything: the caller then runs the batch record by record
        (services/common/stores/batch.py)."""
        if getattr(self._local, "in_tx", False):
            raise RuntimeError("all_at_once() opens its own transaction; it cannot nest")
        with self.transaction() as conn:
            flat = self._local.flat = _FlatBatch(conn, self._column_types)
            self._local.tx_conn = flat.conn
            try:
                yield flat.conn
                if flat.failed:
                    raise BatchNotAtomicError("a step of the batch failed")
                flat.flush(conn)
            finally:
                self._local.tx_conn = conn
                self._local.flat = None

    def insert_later(
        self,
        conn: Connection,
        table: str,
        columns: str,
        row: Sequence[Any],
        on_conflict: str = "",
        parent: bool = False,
    ) -> bool:
        """`INSERT INTO table (columns) VALUES row on_conflict`: now, or in an `all_at_once`
        batch with the batch's other rows of the table, in one statement before anything
        reads the table. True when the row was inserted (in a batch: will be).

        `on_conflict` (e.g. `ON CONFLICT (id) DO NOTHING`): now, a row it skips returns
        False; in a batch every row must be new, else the batch fails (`BatchNotAtomicError`)
        and runs again record by record, where the conflict is answered as it is now.
        `parent`: other tables' deferred rows may refer to these (a foreign key), so they go
        out first."""
        return self.insert_many_later(conn, table, columns, [row], on_conflict, parent) == 1

    def insert_many_later(
        self,
        conn: Connection,
        table: str,
        columns: str,
        rows: Sequence[Sequence[Any]],
        on_conflict: str = "",
        parent: bool = False,
    ) -> int:
        """`insert_later` for several rows (now: one `executemany`); how many were inserted
        (in a batch: all of them, or the batch fails)."""
        if not rows:
            return 0
        flat = self._flat()
        if flat is None:
            marks = ", ".join("?" * len(rows[0]))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) {on_conflict}".rstrip()
            if len(rows) == 1:
                return int(conn.execute(sql, tuple(rows[0])).rowcount)
            return int(conn.executemany(sql, [tuple(r) for r in rows]).rowcount)
        group = flat.inserts.get((table, columns, on_conflict))
        if group is None:
            group = flat.inserts[(table, columns, on_conflict)] = _Inserts(parent=parent)
        group.rows.extend(tuple(r) for r in rows)
        flat.tables.add(table)
        return len(rows)

    def upsert_later(
        self,
        conn: Connection,
        table: str,
        columns: str,
        row: Sequence[Any],
        on_conflict: str,
        key: Hashable,
        supersedes: Callable[[tuple[Any, ...], tuple[Any, ...]], bool],
    ) -> None:
        """`INSERT ... VALUES row on_conflict`, where `on_conflict` updates the stored row of
        `key` (an upsert): now, or in a batch in one multi-row statement with one row per
        key, since one statement cannot update a row twice. Of a key's rows the batch keeps
        the later one when `supersedes(later, kept)`: the upsert's own rule (its `DO UPDATE
        ... WHERE`), so the stored row ends as the upserts one by one would leave it."""
        flat = self._flat()
        if flat is None:
            marks = ", ".join("?" * len(row))
            conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks}) {on_conflict}", row)
            return
        rows = flat.upserts.setdefault((table, columns, on_conflict), {})
        kept = rows.get(key)
        if kept is None or supersedes(tuple(row), kept):
            rows[key] = tuple(row)
        flat.tables.add(table)

    def write_later(
        self,
        conn: Connection,
        table: str,
        key_column: str,
        key: Hashable,
        values: Mapping[str, Any],
        guard: Mapping[str, Any] | None = None,
    ) -> None:
        """`UPDATE table SET values WHERE key_column = key AND guard` (the optimistic check,
        e.g. the version it read) of exactly one row this transaction holds (locked or
        written by it): now, or in an `all_at_once` batch once per row, with the row's
        values merged in the order written and its first `guard` (what the row was before
        the batch), in one `UPDATE ... FROM (VALUES ...)` per table and set of columns,
        before anything reads the table. Raises `LookupError` (now) or
        `BatchNotAtomicError` (batch: a row changed meanwhile is a conflict, and the batch
        runs again record by record) when a row did not match."""
        guard = dict(guard or {})
        flat = self._flat()
        if flat is None:
            sets = ", ".join(f"{c} = ?" for c in values)
            checks = "".join(f" AND {c} = ?" for c in guard)
            sql = f"UPDATE {table} SET {sets} WHERE {key_column} = ?{checks}"
            if conn.execute(sql, (*values.values(), key, *guard.values())).rowcount != 1:
                raise LookupError(f"{table}: no row {key!r} as it was read")
            return
        earlier = flat.writes.get((table, key))
        if earlier is not None:
            values = {**earlier.values, **values}
            guard = earlier.guard
        flat.writes[(table, key)] = _Write(key_column, dict(values), guard)
        flat.tables.add(table)

    def _flat(self) -> _FlatBatch | None:
        """The `all_at_once` batch this thread's transaction is, if it is one."""
        flat: _FlatBatch | None = getattr(self._local, "flat", None)
        return flat if flat is not None and getattr(self._local, "in_tx", False) else None

    def _column_types(self, conn: Connection, table: str) -> Mapping[str, str]:
        """The SQL type of each column of `table`, where a multi-row UPDATE must cast its
        values (`Dialect.column_types_sql`; SQLite's dynamic typing needs none). Read once
        per table: migrations run before a service starts."""
        sql = self.dialect.column_types_sql
        if sql is None:
            return {}
        types = self._types.get(table)
        if types is None:
            types = self._types[table] = {row[0]: row[1] for row in conn.execute(sql, (table,))}
        return types

    def memo(self) -> dict[Hashable, Any] | None:
        """The current write transaction's memo of rows it locked or wrote (None outside one),
        so a later step of the same transaction (the next record of a batch) need not read
        them again: no other writer can change a row this transaction holds. Emptied when
        any part of the transaction rolls back, dropped when it ends."""
        memo: dict[Hashable, Any] | None = getattr(self._local, "memo", None)
        return memo if getattr(self._local, "in_tx", False) else None

    def lock_into_memo(
        self, table: str, key_column: str, keys: Iterable[str], parse: Callable[[Any], Any]
    ) -> None:
        """Read and lock the rows of `table` whose `key_column` is one of `keys`, a few
        statements for all, in key order (the order every replica locks them in), into the
        transaction's memo as (table, key) -> parse(row), for a batch's steps to write them
        without reading them again. Rows the memo holds are not read; outside a
        transaction nothing is."""
        memo = self.memo()
        if memo is None:
            return
        wanted = sorted({k for k in keys if (table, k) not in memo})
        sql = (
            f"SELECT * FROM {table} WHERE {key_column} IN ({{marks}}) "
            f"ORDER BY {key_column}{self.dialect.for_update}"
        )
        with self.reader() as conn:
            for row in select_in_chunks(conn, sql, wanted):
                memo[(table, row[key_column])] = parse(row)

    def _begin(self, conn: Connection, begin: str) -> Connection:
        """Open the transaction. A kept connection the server dropped meanwhile (restart,
        failover) fails on this first statement: it is replaced once, since nothing ran yet."""
        try:
            self._command(conn, begin)
            return conn
        except Exception as exc:
            self._release(conn, broken=True)
            if not self._unavailable(exc):
                raise
        conn = self._acquire()
        try:
            self._command(conn, begin)
        except BaseException:
            self._release(conn, broken=True)
            raise
        return conn

    def _raise_if_unavailable(self, exc: BaseException) -> None:
        if self._unavailable(exc):
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailableError(f"{self.database_name} unavailable: {detail}") from exc

    def _unavailable(self, exc: BaseException) -> bool:
        """Whether `exc` says the database is out of reach (the engine decides)."""
        return False

    def _command(self, conn: Connection, sql: str) -> None:
        """BEGIN, COMMIT or ROLLBACK (an engine may send it by a cheaper path)."""
        conn.execute(sql)

    def _savepoint_command(self, conn: Connection, sql: str) -> None:
        """SAVEPOINT, RELEASE or ROLLBACK TO: run now (an engine may send it later, with the
        next statement, to save a round trip)."""
        conn.execute(sql)

    def _undo(self, conn: Connection, savepoint: str | None, opened: bool) -> bool:
        """Undo this block's writes; True when the connection itself failed (server gone)."""
        try:
            if savepoint:
                self._savepoint_command(conn, f"ROLLBACK TO {savepoint}")
                self._savepoint_command(conn, f"RELEASE {savepoint}")
            elif opened:
                self._command(conn, "ROLLBACK")
        except Exception:
            return True
        return False


def select_in_chunks(
    conn: Connection,
    sql: str,
    values: Iterable[Any],
    before: Sequence[Any] = (),
    chunk: int = LOOKUP_CHUNK,
) -> Iterator[Any]:
    """Rows of `sql` for every value, `LOOKUP_CHUNK` values per query; `sql` holds `{marks}`
    where the `IN` list goes and the parameters `before` ahead of it."""
    wanted = list(dict.fromkeys(values))
    for start in range(0, len(wanted), chunk):
        part = wanted[start : start + chunk]
        yield from conn.execute(sql.format(marks=", ".join("?" * len(part))), (*before, *part))


# Bound parameters per multi-row statement: far below both engines' limits.
_MAX_PARAMETERS = 30000


@dataclass
class _Inserts:
    """A batch's deferred rows of one INSERT statement (table, columns, conflict clause)."""

    parent: bool
    rows: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class _Write:
    """A batch's deferred UPDATE of one row: its values so far and its first guard."""

    key_column: str
    values: dict[str, Any]
    guard: dict[str, Any]


class _FlatBatch:
    """The state of an `all_at_once` batch: the writes it deferred, and the connection the
    repositories get, which sends them before any statement that names their table (so a
    read in the batch always sees them)."""

    def __init__(
        self, conn: Connection, column_types: Callable[[Connection, str], Mapping[str, str]]
    ) -> None:
        self.raw = conn
        self.conn = _DeferringConnection(self)
        self.column_types = column_types
        self.failed = False
        self.tables: set[str] = set()
        self.inserts: dict[tuple[str, str, str], _Inserts] = {}
        self.upserts: dict[tuple[str, str, str], dict[Hashable, tuple[Any, ...]]] = {}
        self.writes: dict[tuple[str, Hashable], _Write] = {}

    def flush_for(self, sql: str) -> None:
        if not self.tables:
            return
        tables = self.tables
        if sql.startswith(_PAST_DEFERRED):
            tables = tables - {sql[len(_PAST_DEFERRED) : sql.index(" */")]}
        if any(table in sql for table in tables):
            self.flush(self.raw)

    def flush(self, conn: Connection) -> None:
        """Inserts (the rows others refer to first), then upserts, then updates: an update
        may change a row the batch inserted."""
        inserts, upserts, writes = self.inserts, self.upserts, self.writes
        self.inserts, self.upserts, self.writes, self.tables = {}, {}, {}, set()
        ordered = sorted(inserts.items(), key=lambda item: not item[1].parent)  # stable
        for (table, columns, on_conflict), group in ordered:
            inserted = _insert_rows(conn, table, columns, on_conflict, group.rows)
            if on_conflict and inserted != len(group.rows):
                raise BatchNotAtomicError(f"{table}: a deferred row was there already")
        for (table, columns, on_conflict), by_key in upserts.items():
            _insert_rows(conn, table, columns, on_conflict, list(by_key.values()))
        # One statement per table and set of columns (and guards).
        groups: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], list[tuple[Any, ...]]]
        groups = {}
        for (table, key), write in writes.items():
            shape = (table, write.key_column, tuple(write.values), tuple(write.guard))
            groups.setdefault(shape, []).append(
                (key, *write.values.values(), *write.guard.values())
            )
        for (table, key_column, assigned, guards), rows in groups.items():
            types = self.column_types(conn, table)
            updated = _update_rows(conn, table, key_column, assigned, guards, rows, types)
            if updated != len(rows):
                raise BatchNotAtomicError(f"{table}: a deferred update found a row changed")


def _chunks(rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    """`rows` in parts of at most `_MAX_PARAMETERS` bound parameters."""
    step = max(1, _MAX_PARAMETERS // len(rows[0]))
    for start in range(0, len(rows), step):
        yield rows[start : start + step]


def _insert_rows(
    conn: Connection, table: str, columns: str, on_conflict: str, rows: list[tuple[Any, ...]]
) -> int:
    """One multi-row INSERT per chunk; how many rows it inserted."""
    row_marks = f"({', '.join('?' * len(rows[0]))})"
    inserted = 0
    for part in _chunks(rows):
        sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_marks] * len(part))}"
        params = tuple(value for row in part for value in row)
        inserted += conn.execute(f"{sql} {on_conflict}".rstrip(), params).rowcount
    return inserted


def _update_rows(
    conn: Connection,
    table: str,
    key_column: str,
    columns: tuple[str, ...],
    guards: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    types: Mapping[str, str],
) -> int:
    """`UPDATE table SET ... FROM (VALUES (key, values..., guards...), ...) v WHERE ...` per
    chunk; how many rows it updated. The VALUES columns are `column1`, `column2`, ... on
    both engines; PostgreSQL types them from their values, so each is cast to its column's
    type (`types`; a NULL or a text alone would not assign to an INTEGER column)."""
    names = (key_column, *columns, *guards)

    def mark(column: str) -> str:
        return f"CAST(? AS {types[column]})" if column in types else "?"

    row_marks = f"({', '.join(mark(c) for c in names)})"
    sets = ", ".join(f"{c} = v.column{n}" for n, c in enumerate(columns, start=2))
    checks = "".join(
        f" AND {table}.{c} = v.column{n}" for n, c in enumerate(guards, start=2 + len(columns))
    )
    updated = 0
    for part in _chunks(rows):
        sql = (
            f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([row_marks] * len(part))}) "
            f"AS v WHERE {table}.{key_column} = v.column1{checks}"
        )
        updated += conn.execute(sql, tuple(value for row in part for value in row)).rowcount
    return updated


class _DeferringConnection:
    """The batch's connection as repositories see it: the deferred writes go out ahead of
    any statement naming one of their tables."""

    def __init__(self, batch: _FlatBatch) -> None:
        self._batch = batch

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        self._batch.flush_for(sql)
        return self._batch.raw.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        self._batch.flush_for(sql)
        return self._batch.raw.executemany(sql, parameters)
