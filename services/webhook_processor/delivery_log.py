"""The webhook processor's durable state, one SQLite (WAL) file:

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
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.actions import ActionJob, ActionResult
from services.common.settings import get_settings
from services.common.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    lane_key INTEGER NOT NULL,
    kind TEXT NOT NULL,                -- job | digest
    payload TEXT NOT NULL,             -- ActionJob JSON, or {"mode", "jobs"} for a digest
    status TEXT NOT NULL,              -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    enqueued_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    error_code TEXT,
    error TEXT,
    result TEXT,                       -- final ActionResult(s) JSON, kept until published
    result_published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (destination, status, seq);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (result_published, status);
CREATE TABLE IF NOT EXISTS digest_queue (
    action_id TEXT PRIMARY KEY,
    destination TEXT NOT NULL,
    mode TEXT NOT NULL,
    job TEXT NOT NULL,
    queued_at REAL NOT NULL,
    digest_id TEXT
);
CREATE INDEX IF NOT EXISTS digest_open ON digest_queue (mode, digest_id, destination);
CREATE TABLE IF NOT EXISTS delivery_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    response_code INTEGER,
    latency_ms REAL,
    at TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS delivery_log_action ON delivery_log (action_id);
CREATE INDEX IF NOT EXISTS outbox_finished ON outbox (updated_at) WHERE result_published = 1;
CREATE INDEX IF NOT EXISTS delivery_log_at ON delivery_log (at);
CREATE TABLE IF NOT EXISTS tickets (
    action_id TEXT PRIMARY KEY,        -- the job that opened the ticket
    destination TEXT NOT NULL,
    ticket_id TEXT NOT NULL,           -- its id on the far side (Jira key, Zendesk id)
    opened_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_opened ON tickets (opened_at);
"""

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
class DigestBatch:
    digest_id: str
    destination: str
    mode: str
    jobs: list[ActionJob]


_ROW_COLUMNS = (
    "seq, action_id, destination, kind, payload, status, attempts, enqueued_at, "
    "error_code, error, result"
)


class DeliveryLog:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or get_settings().resolved_state_dir / "deliveries.db"
        self._conn = connect(self.path)
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

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
        now = time.time()
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO outbox (action_id, destination, lane_key, kind, payload,"
            " status, enqueued_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (action_id, destination, lane_key(account_id), kind, payload, status, now, now),
        )
        return cur.rowcount == 1

    def reopen_failed(self, action_id: str) -> bool:
        """A failed job becomes pending again (a DLQ replay); delivered jobs stay final."""
        cur = self._conn.execute(
            "UPDATE outbox SET status = ?, attempts = 0, error_code = NULL, error = NULL,"
            " result = NULL, result_published = 0, updated_at = ?"
            " WHERE action_id = ? AND status = ?",
            (PENDING, time.time(), action_id, FAILED),
        )
        return cur.rowcount == 1

    def add_job(self, job: ActionJob, status: str = PENDING) -> bool:
        return self.add(
            job.action_id, job.destination, job.account_id, "job", job.model_dump_json(), status
        )

    def status(self, action_id: str) -> str | None:
        row = self._conn.execute(
            "SELECT status FROM outbox WHERE action_id = ?", (action_id,)
        ).fetchone()
        return row[0] if row else None

    def next_pending(self, destination: str, lanes: int, lane: int) -> OutboxRow | None:
        row = self._conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM outbox WHERE destination = ? AND status = ?"
            " AND lane_key % ? = ? ORDER BY seq LIMIT 1",
            (destination, PENDING, lanes, lane),
        ).fetchone()
        return OutboxRow(*row) if row else None

    def pending_count(self, destination: str | None = None) -> int:
        if destination is None:
            sql, args = "SELECT count(*) FROM outbox WHERE status = ?", (PENDING,)
        else:
            sql = "SELECT count(*) FROM outbox WHERE status = ? AND destination = ?"
            args = (PENDING, destination)  # type: ignore[assignment]
        return int(self._conn.execute(sql, args).fetchone()[0])

    def pending_destinations(self) -> list[str]:
        rows = self._conn.execute(
            "SELECT DISTINCT destination FROM outbox WHERE status = ?", (PENDING,)
        ).fetchall()
        return [r[0] for r in rows]

    def set_attempts(self, action_id: str, attempts: int) -> None:
        self._conn.execute(
            "UPDATE outbox SET attempts = ?, updated_at = ? WHERE action_id = ?",
            (attempts, time.time(), action_id),
        )

    def finish(
        self,
        action_id: str,
        status: str,
        results: list[ActionResult],
        error_code: str | None = None,
        error: str | None = None,
    ) -> None:
        """Final state and the results still to publish, in one statement (crash-safe)."""
        payload = json.dumps([r.model_dump(mode="json") for r in results])
        self._conn.execute(
            "UPDATE outbox SET status = ?, result = ?, error_code = ?, error = ?,"
            " updated_at = ? WHERE action_id = ?",
            (status, payload, error_code, error, time.time(), action_id),
        )

    def mark_published(self, action_id: str) -> None:
        self._conn.execute(
            "UPDATE outbox SET result_published = 1, result = NULL WHERE action_id = ?",
            (action_id,),
        )

    def unpublished(self) -> list[OutboxRow]:
        """Finished rows whose results a crash kept from being published."""
        rows = self._conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM outbox WHERE result_published = 0 AND status != ?"
            " ORDER BY seq",
            (PENDING,),
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    # --- digests ----------------------------------------------------------------------------

    def queue_digest(self, job: ActionJob) -> bool:
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO digest_queue (action_id, destination, mode, job, queued_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                job.action_id,
                job.destination,
                job.delivery_mode.value,
                job.model_dump_json(),
                time.time(),
            ),
        )
        return cur.rowcount == 1

    def is_digest_queued(self, action_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM digest_queue WHERE action_id = ?", (action_id,)
        ).fetchone()
        return row is not None

    def cut_digests(self, mode: str) -> list[DigestBatch]:
        """Close every open batch of `mode`: one digest per destination, stored in the outbox
        as a pending row (so it is delivered with retries and survives restarts)."""
        batches: list[DigestBatch] = []
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            rows = self._conn.execute(
                "SELECT action_id, destination, job FROM digest_queue"
                " WHERE mode = ? AND digest_id IS NULL ORDER BY destination, queued_at",
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
                self.add(digest_id, destination, destination, "digest", payload)
                self._conn.executemany(
                    "UPDATE digest_queue SET digest_id = ? WHERE action_id = ?",
                    [(digest_id, i) for i in ids],
                )
                batches.append(DigestBatch(digest_id, destination, mode, jobs))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return batches

    # --- tickets ----------------------------------------------------------------------------

    def remember_ticket(self, action_id: str, destination: str, ticket_id: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO tickets (action_id, destination, ticket_id, opened_at)"
            " VALUES (?, ?, ?, ?)",
            (action_id, destination, ticket_id, datetime.now(UTC).isoformat()),
        )

    def ticket_id(self, opened_by: str) -> str | None:
        """The id of the ticket the job `opened_by` opened, if it did (here)."""
        row = self._conn.execute(
            "SELECT ticket_id FROM tickets WHERE action_id = ?", (opened_by,)
        ).fetchone()
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
        self._conn.execute(
            "INSERT INTO delivery_log (action_id, destination, attempt, status, response_code,"
            " latency_ms, at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                action_id,
                destination,
                attempt,
                status,
                response_code,
                latency_ms,
                datetime.now(UTC).isoformat(),
                error,
            ),
        )

    def purge(self, delivered_before: float, attempts_before: datetime) -> dict[str, int]:
        """Delete delivered jobs whose result was published before `delivered_before` (epoch
        seconds; pick it past Kafka's retention, so no redelivery can re-add them), their
        digest entries, and delivery attempts and ticket ids older than `attempts_before`
        (an update of an older ticket uses the id the execution agent kept). Failed jobs stay:
        they are what a DLQ replay reopens."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            digests = self._conn.execute(
                "DELETE FROM digest_queue WHERE digest_id IN (SELECT action_id FROM outbox"
                " WHERE result_published = 1 AND updated_at < ? AND status = ? AND kind = ?)",
                (delivered_before, DELIVERED, "digest"),
            ).rowcount
            jobs = self._conn.execute(
                "DELETE FROM outbox WHERE result_published = 1 AND updated_at < ? AND status = ?",
                (delivered_before, DELIVERED),
            ).rowcount
            attempts = self._conn.execute(
                "DELETE FROM delivery_log WHERE at < ?", (attempts_before.isoformat(),)
            ).rowcount
            tickets = self._conn.execute(
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
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]
