"""The webhook processor's durable state: one SQLite (WAL) file, or PostgreSQL shared by every
replica (`REVOPS_DATABASE_URL`; schema in migrations/<engine>/):

- `outbox`: every accepted job (or digest), keyed by action_id, with its status. Inserting
  is idempotent, so a redelivered Kafka record is stored once and a delivered job is never
  delivered again; pending rows are what the engine resumes after a restart.
- `digest_queue`: jobs waiting for the next daily/weekly digest.
- `delivery_log`: one row per attempt (action id, destination, attempt, status, response
  code, latency, time, error) for audit and `revops` look-ups.
- `tickets`: the far side's id of every ticket a job opened, so a later update of that
  ticket can address it.

`purge` (the service's housekeeping timer) keeps both bounded: delivered and published jobs
go once no Kafka record can bring them back; attempts go after the audit retention.

Calls are synchronous and short (one indexed statement each); the engine runs them on the
event loop, which keeps per-destination ordering trivial.

Claims: `next_pending_many` claims the jobs it returns for this log's owner (a lease,
renewed by every attempt, cleared when the job is finished; `next_pending` is one of them).
It claims an account's jobs only from its oldest pending one on, and skips rows another
replica holds (`FOR UPDATE SKIP LOCKED` in PostgreSQL), so N replicas deliver each job once
and keep per-account order. A replica that dies mid-delivery leaves its lease to run out
(`CLAIM_LEASE_S`); then another replica takes the job over. `finish_many` writes several
jobs' final states and attempts in one statement.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import zlib
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from contracts.actions import ActionJob, ActionResult
from services.common.settings import get_settings
from services.common.stores.batch import in_one_transaction
from services.common.stores.database import LOOKUP_CHUNK, Connection, Database
from services.common.stores.open import open_database

MIGRATIONS = Path(__file__).with_name("migrations")
_Item = TypeVar("_Item")
_Out = TypeVar("_Out")
# How long a claimed job stays with the replica delivering it without a new attempt.
CLAIM_LEASE_S = 60.0


PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def lane_key(account_id: str) -> int:
    """Stable across processes and restarts (unlike hash()): one account, one lane."""
    return zlib.crc32(account_id.encode())


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    action_id: str
    destination: str
    kind: str
    payload: str
    status: str
    attempts: int
    enqueued_at: float
    error_code: str | None
    error: str | None
    result: str | None

    def job(self) -> ActionJob:
        return ActionJob.model_validate_json(self.payload)

    def digest_jobs(self) -> tuple[str, list[ActionJob]]:
        data = json.loads(self.payload)
        return data["mode"], [ActionJob.model_validate(j) for j in data["jobs"]]

    def results(self) -> list[ActionResult]:
        return [ActionResult.model_validate(r) for r in json.loads(self.result or "[]")]


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt of a job (a `delivery_log` row)."""

    destination: str
    attempt: int
    status: str
    response_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None

    def row(self, action_id: str) -> tuple[Any, ...]:
        """The values of `_INSERT_ATTEMPT`, stamped now."""
        return (
            action_id,
            self.destination,
            self.attempt,
            self.status,
            self.response_code,
            self.latency_ms,
            datetime.now(UTC).isoformat(),
            self.error,
        )


_INSERT_ATTEMPTS = (
    "INSERT INTO delivery_log (action_id, destination, attempt, status, response_code,"
    " latency_ms, at, error) VALUES "
)
_ATTEMPT_MARKS = "(?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_ATTEMPT = _INSERT_ATTEMPTS + _ATTEMPT_MARKS


@dataclass(frozen=True)
class Finish:
    """A job's final state for `DeliveryLog.finish_many`: its status, the results still to
    publish, the error of a failure, and the attempt that ended it (if not logged yet)."""

    action_id: str
    status: str
    results: list[ActionResult]
    error_code: str | None = None
    error: str | None = None
    attempt: Attempt | None = None

    def values(self) -> tuple[Any, ...]:
        """The job's row of `finish_many`'s VALUES list."""
        payload = json.dumps([r.model_dump(mode="json") for r in self.results])
        return (self.action_id, self.status, payload, self.error_code, self.error)


@dataclass(frozen=True)
class DigestBatch:
    digest_id: str
    destination: str
    mode: str
    jobs: list[ActionJob]


_INSERT_COLUMNS = "action_id, destination, lane_key, kind, payload, status, enqueued_at, updated_at"
# Memo key: whether `add_jobs` stored the job (True) or found it stored (False).
_ADDED = "outbox:added"

_ROW_COLUMNS = (
    "seq, action_id, destination, kind, payload, status, attempts, enqueued_at, "
    "error_code, error, result"
)


class DeliveryLog:
    def __init__(self, path: Path | None = None, url: str | None = None) -> None:
        self.path = path or get_settings().resolved_state_dir / "deliveries.db"
        self._db: Database = open_database(self.path, "webhook_processor", MIGRATIONS, url)
        self.owner = uuid.uuid4().hex  # this process's claims
        if self._db.dialect.name == "sqlite":
            # The embedded file has one webhook processor: claims of an earlier run of it
            # (killed mid-delivery) are void, no need to wait for their lease.
            self._write("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make the calls inside one transaction (nested: a savepoint). Keep it synchronous:
        the database nests by thread, so an `await` inside would let another task's calls
        join it."""
        with self._db.transaction():
            yield

    def in_one_transaction(
        self,
        items: Sequence[_Item],
        step: Callable[[_Item], _Out],
        key_of: Callable[[_Item], Hashable],
        prepare: Callable[[Sequence[_Item]], None] | None = None,
    ) -> list[_Out | BaseException]:
        """`step(item)` for a batch of items in one transaction, each failing alone
        (services/common/stores/batch.py). Synchronous, as `transaction`."""
        return in_one_transaction(self._db, items, step, key_of, prepare)

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._db.one_statement() as conn:
            return int(conn.execute(sql, params).rowcount)

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self._db.reader() as conn:
            return conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._db.reader() as conn:
            return list(conn.execute(sql, params).fetchall())

    # --- outbox -----------------------------------------------------------------------------

    def add(
        self,
        action_id: str,
        destination: str,
        account_id: str,
        kind: str,
        payload: str,
        status: str = PENDING,
    ) -> bool:
        """Store a job once; False when this action_id was already stored (any status)."""
        memo = self._db.memo()
        if memo is not None and status == PENDING and kind == "job":
            stored: bool | None = memo.pop((_ADDED, action_id), None)  # by `add_jobs`
            if stored is not None:
                return stored
        with self._db.one_statement() as conn:
            return _add(conn, action_id, destination, account_id, kind, payload, status)

    def add_jobs(self, jobs: Sequence[ActionJob]) -> None:
        """Store a batch's pending jobs set-based (one INSERT per `LOOKUP_CHUNK` jobs), in
        the caller's transaction; each job's `add_job` then answers from the transaction's
        memo whether it was new, as if it had stored it alone. Outside a transaction it
        does nothing (each `add_job` stores its job)."""
        memo = self._db.memo()
        if memo is None:
            return
        unique = list({j.action_id: j for j in reversed(jobs)}.values())[::-1]  # first wins
        now = time.time()
        for start in range(0, len(unique), LOOKUP_CHUNK):
            part = unique[start : start + LOOKUP_CHUNK]
            marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(part))
            values = [
                (j.action_id, j.destination, lane_key(j.account_id), "job", j.model_dump_json())
                for j in part
            ]
            with self._db.transaction() as conn:
                added = {
                    row[0]
                    for row in conn.execute(
                        f"INSERT INTO outbox ({_INSERT_COLUMNS}) VALUES {marks}"
                        " ON CONFLICT (action_id) DO NOTHING RETURNING action_id",
                        tuple(v for row in values for v in (*row, PENDING, now, now)),
                    )
                }
            memo.update(((_ADDED, j.action_id), j.action_id in added) for j in part)

    def reopen_failed(self, action_id: str) -> bool:
        """A failed job becomes pending again (a DLQ replay); delivered jobs stay final."""
        changed = self._write(
            "UPDATE outbox SET status = ?, attempts = 0, error_code = NULL, error = NULL,"
            " result = NULL, result_published = 0, updated_at = ?, claimed_by = NULL,"
            " claimed_until = NULL WHERE action_id = ? AND status = ?",
            (PENDING, time.time(), action_id, FAILED),
        )
        return changed == 1

    def add_job(self, job: ActionJob, status: str = PENDING) -> bool:
        return self.add(
            job.action_id, job.destination, job.account_id, "job", job.model_dump_json(), status
        )

    def status(self, action_id: str) -> str | None:
        row = self._one("SELECT status FROM outbox WHERE action_id = ?", (action_id,))
        return row[0] if row else None

    def next_pending(self, destination: str, lanes: int, lane: int) -> OutboxRow | None:
        """Claim and return the next job of lane `lane` of `lanes` (the engine's partition
        of accounts within this process): the oldest pending job of its account that no
        other replica holds."""
        rows = self.next_pending_many(destination, lanes, lane, 1)
        return rows[0] if rows else None

    def next_pending_many(
        self, destination: str, lanes: int, lane: int, limit: int
    ) -> list[OutboxRow]:
        """Claim and return up to `limit` jobs of lane `lane` of `lanes`, oldest first, in
        ONE statement: the oldest pending job of each account that no other replica holds
        (locked, `FOR UPDATE SKIP LOCKED` in PostgreSQL), then that account's later pending
        jobs behind it. Whoever locks an account's oldest pending job claims the account's
        jobs: a replica never takes a later job of an account while an older one is pending
        (its own claims aside, which it gets back: a lane retrying after an error). The
        caller delivers them in this order, an account's one after another."""
        now = time.time()
        mine = (now, self.owner)  # the parameters of `_claimable`
        # Not inlined (MATERIALIZED): the heads are locked before the followers are read.
        # The per-account lookups are scalar subqueries (min(seq) of an account's pending
        # jobs), which the (destination, lane_key, status, seq) index answers even before
        # the planner has statistics; as NOT EXISTS they became anti-joins scanning every
        # pending job of the destination.
        sql = (
            "WITH heads AS MATERIALIZED (SELECT seq, lane_key FROM outbox o"
            " WHERE destination = ? AND status = ? AND lane_key % ? = ?"
            f" AND {_claimable('o')} AND seq = (SELECT min(e.seq) FROM outbox e"
            " WHERE e.destination = o.destination AND e.lane_key = o.lane_key"
            " AND e.status = ?)"
            f" ORDER BY seq LIMIT ?{self._db.dialect.for_update_skip_locked}),"
            # Behind each head: its account's pending jobs up to the first one another
            # replica holds (one it kept by an attempt, which renews that job's lease only).
            " bounds AS MATERIALIZED (SELECT h.seq, h.lane_key, (SELECT min(e.seq)"
            " FROM outbox e WHERE e.destination = ? AND e.lane_key = h.lane_key"
            f" AND e.status = ? AND e.seq > h.seq AND NOT {_claimable('e')}) AS barrier"
            " FROM heads h),"
            " picked AS MATERIALIZED (SELECT f.seq FROM bounds b JOIN outbox f"
            " ON f.destination = ? AND f.lane_key = b.lane_key AND f.status = ?"
            " AND f.seq >= b.seq AND (b.barrier IS NULL OR f.seq < b.barrier)"
            f" WHERE {_claimable('f')} ORDER BY f.seq LIMIT ?)"
            " UPDATE outbox SET claimed_by = ?, claimed_until = ?"
            # Checked again on the row as it is now (another replica may have finished a
            # follower, which no lock of ours kept from changing).
            f" WHERE seq IN (SELECT seq FROM picked) AND status = ? AND {_claimable('outbox')}"
            f" RETURNING {_ROW_COLUMNS}"
        )
        params = (
            *(destination, PENDING, lanes, lane, *mine, PENDING, limit),  # heads
            *(destination, PENDING, *mine),  # bounds
            *(destination, PENDING, *mine, limit),  # picked
            *(self.owner, now + CLAIM_LEASE_S),  # SET
            *(PENDING, *mine),  # WHERE
        )
        # One statement (claim and read back), so it needs no BEGIN/COMMIT.
        with self._db.one_statement() as conn:
            rows = conn.execute(sql, params).fetchall()
        return sorted((OutboxRow(*row) for row in rows), key=lambda row: row.seq)

    def release(self, action_ids: Sequence[str]) -> None:
        """Give up this log's claims of these jobs that are still pending (a lane stopping
        with jobs it claimed but did not deliver), so another replica need not wait for
        their lease to run out."""
        for chunk in _chunks(list(action_ids)):
            self._write(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                f" WHERE claimed_by = ? AND status = ? AND action_id IN ({_marks(len(chunk))})",
                (self.owner, PENDING, *chunk),
            )

    def pending_count(self, destination: str | None = None) -> int:
        if destination is None:
            sql, args = "SELECT count(*) FROM outbox WHERE status = ?", (PENDING,)
        else:
            sql = "SELECT count(*) FROM outbox WHERE status = ? AND destination = ?"
            args = (PENDING, destination)  # type: ignore[assignment]
        return int(self._one(sql, args)[0])

    def pending_destinations(self) -> list[str]:
        rows = self._all("SELECT DISTINCT destination FROM outbox WHERE status = ?", (PENDING,))
        return [r[0] for r in rows]

    def set_attempts(self, action_id: str, attempts: int) -> None:
        now = time.time()
        self._write(
            "UPDATE outbox SET attempts = ?, updated_at = ?, claimed_until = ?"
            " WHERE action_id = ? AND claimed_by = ?",
            (attempts, now, now + CLAIM_LEASE_S, action_id, self.owner),
        )

    def finish(
        self,
        action_id: str,
        status: str,
        results: list[ActionResult],
        error_code: str | None = None,
        error: str | None = None,
        attempt: Attempt | None = None,
    ) -> None:
        """Final state and the results still to publish (`finish_many` of one)."""
        self.finish_many([Finish(action_id, status, results, error_code, error, attempt)])

    def finish_many(self, finishes: Sequence[Finish]) -> None:
        """Final states and the results still to publish of several jobs, with the attempts
        that ended them, crash-safe: in one statement per `LOOKUP_CHUNK` jobs where the
        engine can (PostgreSQL: the attempts inserted by a data-modifying WITH), else in one
        transaction. Each job's claim is cleared."""
        for chunk in _chunks(list(finishes)):
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
            update = (
                "UPDATE outbox SET status = v.status, result = v.result,"
                " error_code = v.error_code, error = v.error, updated_at = ?,"
                " claimed_by = NULL, claimed_until = NULL FROM v"
                " WHERE outbox.action_id = v.action_id"
            )
            final = f"WITH v (action_id, status, result, error_code, error) AS (VALUES {values})"
            states = tuple(v for f in chunk for v in f.values())
            now = time.time()
            attempts = [f.attempt.row(f.action_id) for f in chunk if f.attempt is not None]
            insert = _INSERT_ATTEMPTS + ", ".join([_ATTEMPT_MARKS] * len(attempts))
            logged = tuple(v for row in attempts for v in row)
            if not attempts:
                self._write(f"{final} {update}", (*states, now))
            elif self._db.dialect.name == "postgresql":
                self._write(f"{final}, attempt AS ({insert}) {update}", (*states, *logged, now))
            else:
                with self._db.transaction() as conn:
                    conn.execute(insert, logged)
                    conn.execute(f"{final} {update}", (*states, now))

    def mark_published(self, action_id: str) -> None:
        self.mark_published_many([action_id])

    def mark_published_many(self, action_ids: Sequence[str]) -> None:
        # One statement per chunk: a mark is idempotent, needs no atomicity.
        for chunk in _chunks(list(dict.fromkeys(action_ids))):
            self._write(
                "UPDATE outbox SET result_published = 1, result = NULL"
                f" WHERE action_id IN ({_marks(len(chunk))})",
                tuple(chunk),
            )

    def unpublished(self) -> list[OutboxRow]:
        """Finished rows whose results a crash kept from being published."""
        rows = self._all(
            f"SELECT {_ROW_COLUMNS} FROM outbox WHERE result_published = 0 AND status != ?"
            " ORDER BY seq",
            (PENDING,),
        )
        return [OutboxRow(*r) for r in rows]

    # --- digests ----------------------------------------------------------------------------

    def queue_digest(self, job: ActionJob) -> bool:
        added = self._write(
            "INSERT INTO digest_queue (action_id, destination, mode, job, queued_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (action_id) DO NOTHING",
            (
                job.action_id,
                job.destination,
                job.delivery_mode.value,
                job.model_dump_json(),
                time.time(),
            ),
        )
        return added == 1

    def is_digest_queued(self, action_id: str) -> bool:
        row = self._one("SELECT 1 FROM digest_queue WHERE action_id = ?", (action_id,))
        return row is not None

    def cut_digests(self, mode: str) -> list[DigestBatch]:
        """Close every open batch of `mode`: one digest per destination, stored in the outbox
        as a pending row (so it is delivered with retries and survives restarts)."""
        batches: list[DigestBatch] = []
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT action_id, destination, job FROM digest_queue"
                " WHERE mode = ? AND digest_id IS NULL ORDER BY destination, queued_at"
                + self._db.dialect.for_update,
                (mode,),
            ).fetchall()
            by_destination: dict[str, list[tuple[str, str]]] = {}
            for action_id, destination, job in rows:
                by_destination.setdefault(destination, []).append((action_id, job))
            for destination, members in by_destination.items():
                ids = [m[0] for m in members]
                digest_hash = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
                digest_id = f"digest:{mode}:{destination}:{digest_hash}"
                jobs = [ActionJob.model_validate_json(m[1]) for m in members]
                payload = json.dumps(
                    {"mode": mode, "jobs": [j.model_dump(mode="json") for j in jobs]}
                )
                _add(conn, digest_id, destination, destination, "digest", payload, PENDING)
                conn.executemany(
                    "UPDATE digest_queue SET digest_id = ? WHERE action_id = ?",
                    [(digest_id, i) for i in ids],
                )
                batches.append(DigestBatch(digest_id, destination, mode, jobs))
        return batches

    # --- tickets ----------------------------------------------------------------------------

    def remember_ticket(self, action_id: str, destination: str, ticket_id: str) -> None:
        self._write(
            "INSERT INTO tickets (action_id, destination, ticket_id, opened_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (action_id) DO UPDATE SET"
            " destination = excluded.destination, ticket_id = excluded.ticket_id,"
            " opened_at = excluded.opened_at",
            (action_id, destination, ticket_id, datetime.now(UTC).isoformat()),
        )

    def ticket_id(self, opened_by: str) -> str | None:
        """The id of the ticket the job `opened_by` opened, if it did (here)."""
        row = self._one("SELECT ticket_id FROM tickets WHERE action_id = ?", (opened_by,))
        return None if row is None else str(row[0])

    # --- attempt log ------------------------------------------------------------------------

    def record_attempt(
        self,
        action_id: str,
        destination: str,
        attempt: int,
        status: str,
        response_code: int | None = None,
        latency_ms: float | None = None,
        error: str | None = None,
    ) -> None:
        self._write(
            _INSERT_ATTEMPT,
            Attempt(destination, attempt, status, response_code, latency_ms, error).row(action_id),
        )

    def purge(self, delivered_before: float, attempts_before: datetime) -> dict[str, int]:
        """Delete delivered jobs whose result was published before `delivered_before` (epoch
        seconds; pick it past Kafka's retention, so no redelivery can re-add them), their
        digest entries, and delivery attempts and ticket ids older than `attempts_before`
        (an update of an older ticket uses the id the execution agent kept). Failed jobs stay:
        they are what a DLQ replay reopens."""
        with self._db.transaction() as conn:
            digests = conn.execute(
                "DELETE FROM digest_queue WHERE digest_id IN (SELECT action_id FROM outbox"
                " WHERE result_published = 1 AND updated_at < ? AND status = ? AND kind = ?)",
                (delivered_before, DELIVERED, "digest"),
            ).rowcount
            jobs = conn.execute(
                "DELETE FROM outbox WHERE result_published = 1 AND updated_at < ? AND status = ?",
                (delivered_before, DELIVERED),
            ).rowcount
            attempts = conn.execute(
                "DELETE FROM delivery_log WHERE at < ?", (attempts_before.isoformat(),)
            ).rowcount
            tickets = conn.execute(
                "DELETE FROM tickets WHERE opened_at < ?", (attempts_before.isoformat(),)
            ).rowcount
        return {"jobs": jobs, "digest_entries": digests, "attempts": attempts, "tickets": tickets}

    def attempts(self, action_id: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT action_id, destination, attempt, status, response_code, latency_ms, at,"
            " error FROM delivery_log"
        )
        args: tuple[Any, ...] = ()
        if action_id is not None:
            sql += " WHERE action_id = ?"
            args = (action_id,)
        cols = [
            "action_id",
            "destination",
            "attempt",
            "status",
            "response_code",
            "latency_ms",
            "at",
            "error",
        ]
        rows = self._all(sql + " ORDER BY id", args)
        return [dict(zip(cols, r, strict=True)) for r in rows]


def _claimable(alias: str) -> str:
    """Whether row `alias` is free for this log to claim: unclaimed, its lease run out, or
    claimed by this log already. Parameters: now, the owner."""
    return f"({alias}.claimed_until IS NULL OR {alias}.claimed_until < ? OR {alias}.claimed_by = ?)"


def _chunks(items: list[_Item]) -> list[list[_Item]]:
    """`items` in slices of at most `LOOKUP_CHUNK` (bounded statements)."""
    return [items[i : i + LOOKUP_CHUNK] for i in range(0, len(items), LOOKUP_CHUNK)]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _add(
    conn: Connection,
    action_id: str,
    destination: str,
    account_id: str,
    kind: str,
    payload: str,
    status: str,
) -> bool:
    now = time.time()
    cur = conn.execute(
        f"INSERT INTO outbox ({_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (action_id) DO NOTHING",
        (action_id, destination, lane_key(account_id), kind, payload, status, now, now),
    )
    return bool(cur.rowcount == 1)
