"""The export outbox in the execution agent's store, and the lease that makes one exporter
drain it at a time.

Why a single-writer lease rather than claims by several exporters: the changes of one insight
must reach the warehouse in order (a late writer must not put an older state back), Firebolt
has no atomic upsert, and the embedded DuckDB file takes one writing process anyway. So
one exporter among all the replicas holds the lease, drains the outbox in `seq` order and
renews the lease with every batch it marks done; the others find it held and do nothing.
A crashed exporter's lease runs out (`LEASE_S`) and the next one re-exports what it had not
marked: the warehouse writes are idempotent, so that changes nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.common.stores.database import (
    LOOKUP_CHUNK,
    Connection,
    Database,
    select_in_chunks,
)
from services.execution_agent.store import to_db_time
from services.execution_agent.warehouse_export.columns import (
    AUDIT,
    INSIGHTS,
    Row,
    event_id,
    warehouse_row,
)

OUTBOX = "revops_ai_insight_export_outbox"
LEASE = "revops_ai_insight_export_lease"
LEASE_NAME = "warehouse"
LEASE_S = 120.0  # far above one batch's write; renewed after each batch
#: Outbox rows dropped per transaction by `drop`.
DROP_CHUNK = 500

#: First and last seq of consecutive exported outbox rows (both included).
SeqRange = tuple[int, int]


# The audit row of each change a batch carries, found through its outbox row by
# (insight_id, version) (index ix_insight_audit_version): not every change of the batch's
# insights, whose number grows with their history (an insight re-run daily gains one a day).
CHANGES_AUDIT_ROWS = (
    f"SELECT a.* FROM {OUTBOX} o JOIN revops_ai_insight_audit a "
    "ON a.insight_id = o.insight_id AND a.version = o.version "
    "WHERE o.seq IN ({marks}) ORDER BY a.audit_id"
)


class LeaseLostError(RuntimeError):
    """This exporter's lease ran out and another exporter took it: stop (what was written is
    re-exported by the new holder, harmlessly)."""


def enqueue_export(
    store: Database, conn: Connection, insight_id: str, version: int, at: datetime
) -> None:
    """Record that `insight_id` changed to `version`, in the caller's transaction (the
    insight store calls it with every audit row; a batch writes its rows together)."""
    store.insert_later(
        conn,
        OUTBOX,
        "event_id, insight_id, version, enqueued_at",
        (event_id(insight_id, version), insight_id, version, to_db_time(at)),
    )


@dataclass(frozen=True)
class Pending:
    seq: int
    event_id: str
    insight_id: str
    version: int


@dataclass
class ExportBatch:
    """What one batch writes: the current state of every insight it touches and the audit
    row of every change it carries."""

    pending: list[Pending]
    insights: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)


class ExportOutbox:
    def __init__(
        self,
        store: Database,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
        lease_s: float = LEASE_S,
    ) -> None:
        self.store = store
        self.holder = holder or f"exporter-{uuid.uuid4()}"
        self.clock = clock
        self.lease_s = lease_s

    # -- the lease --------------------------------------------------------------------------

    def take_lease(self) -> bool:
        """Hold the lease (take it when free or run out, renew it when ours); False when
        another exporter holds it."""
        now = self.clock()
        with self.store.transaction() as conn:
            conn.execute(
                f"INSERT INTO {LEASE} (name, holder, until) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (LEASE_NAME, self.holder, now + self.lease_s),
            )
            row = conn.execute(
                f"SELECT holder, until FROM {LEASE} WHERE name = ?{self.store.dialect.for_update}",
                (LEASE_NAME,),
            ).fetchone()
            if row[0] != self.holder and row[1] > now:
                return False
            conn.execute(
                f"UPDATE {LEASE} SET holder = ?, until = ? WHERE name = ?",
                (self.holder, now + self.lease_s, LEASE_NAME),
            )
        return True

    def release_lease(self) -> None:
        """Let the lease run out now (the row stays: a deleted row would let two exporters
        racing to insert it both miss it)."""
        with self.store.transaction() as conn:
            conn.execute(
                f"UPDATE {LEASE} SET until = 0 WHERE name = ? AND holder = ?",
                (LEASE_NAME, self.holder),
            )

    # -- the outbox -------------------------------------------------------------------------

    def pending_count(self, after_seq: int = 0) -> int:
        """Changes in the outbox (those after `after_seq`)."""
        with self.store.reader() as conn:
            return int(
                conn.execute(
                    f"SELECT count(*) FROM {OUTBOX} WHERE seq > ?", (after_seq,)
                ).fetchone()[0]
            )

    def next_batch(self, size: int, after_seq: int = 0) -> ExportBatch | None:
        """The oldest `size` changes (after `after_seq`) with what they write, or None when
        there are none."""
        with self.store.reader() as conn:
            pending = [
                Pending(int(r[0]), r[1], r[2], int(r[3]))
                for r in conn.execute(
                    f"SELECT seq, event_id, insight_id, version FROM {OUTBOX} "
                    "WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, size),
                )
            ]
            if not pending:
                return None
            return self._load(conn, pending)

    def _load(self, conn: Connection, pending: list[Pending]) -> ExportBatch:
        exported_at = datetime.now(UTC).replace(tzinfo=None)
        ids = [p.insight_id for p in pending]
        batch = ExportBatch(pending)
        batch.insights = [
            warehouse_row(INSIGHTS, row, exported_at)
            for row in select_in_chunks(
                conn, "SELECT * FROM revops_ai_insights WHERE insight_id IN ({marks})", ids
            )
        ]
        wanted = {(p.insight_id, p.version): p.event_id for p in pending}
        for row in select_in_chunks(conn, CHANGES_AUDIT_ROWS, [p.seq for p in pending]):
            key = (row["insight_id"], int(row["version"]))
            if key in wanted:
                batch.events.append(
                    warehouse_row(AUDIT, row, exported_at, event_id=wanted.pop(key))
                )
        return batch

    def done(self, pending: Sequence[Pending]) -> None:
        """Drop the exported rows and renew the lease, in one transaction; `LeaseLostError`
        (and nothing dropped) when another exporter holds the lease now."""
        with self.store.transaction() as conn:
            self._renew(conn)
            seqs = [p.seq for p in pending]
            for start in range(0, len(seqs), LOOKUP_CHUNK):
                part = seqs[start : start + LOOKUP_CHUNK]
                conn.execute(
                    f"DELETE FROM {OUTBOX} WHERE seq IN ({', '.join('?' * len(part))})", part
                )

    def renew_lease(self) -> None:
        """Renew the lease alone (an exporter that leaves its rows for its caller to drop);
        `LeaseLostError` when another exporter holds it now."""
        with self.store.transaction() as conn:
            self._renew(conn)

    def _renew(self, conn: Connection) -> None:
        renewed = conn.execute(
            f"UPDATE {LEASE} SET until = ? WHERE name = ? AND holder = ?",
            (self.clock() + self.lease_s, LEASE_NAME, self.holder),
        )
        if renewed.rowcount != 1:
            raise LeaseLostError(f"{self.holder} lost the export lease")

    def drop(self, exported: Sequence[SeqRange]) -> int:
        """Drop exported rows, given as ranges of consecutive seqs that were all exported,
        `DROP_CHUNK` rows per transaction: each holds the store's write lock for a moment
        only. No lease is needed: a row exported once may be exported again (the warehouse
        writes are idempotent) and may be dropped by anyone. Returns the rows dropped."""
        dropped = 0
        for first, last in exported:
            for lo in range(first, last + 1, DROP_CHUNK):
                hi = min(lo + DROP_CHUNK - 1, last)
                with self.store.transaction() as conn:
                    gone = conn.execute(f"DELETE FROM {OUTBOX} WHERE seq BETWEEN ? AND ?", (lo, hi))
                    dropped += max(gone.rowcount, 0)
        return dropped


def seq_ranges(seqs: Iterable[int], ranges: list[SeqRange] | None = None) -> list[SeqRange]:
    """Ascending seqs as ranges of consecutive ones, appended to `ranges` (merged with its
    last range when they touch)."""
    ranges = [] if ranges is None else ranges
    for seq in seqs:
        if ranges and ranges[-1][1] + 1 == seq:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges
