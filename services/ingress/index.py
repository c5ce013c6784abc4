"""The ingress's small index: request ids it accepted, flow outputs and rejections it saw, and
how far it read `revops.flow-results` and the flow-ending DLQs (so a restart resumes instead
of re-reading the topics).

A SQLite file (embedded), or PostgreSQL shared by every ingress replica
(`REVOPS_DATABASE_URL`): a request accepted by one replica is known to all, so a status call
answers on any of them. Every replica follows the topics itself (no consumer group) and
writes what it reads; the first write of a flow or rejection wins, the others change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import orjson

from contracts import FlowOutput
from services.common.dlq import Rejection
from services.common.stores.database import Database
from services.common.stores.open import open_database

MIGRATIONS = Path(__file__).with_name("migrations")


class FlowIndex:
    def __init__(self, path: Path, url: str | None = None) -> None:
        self._db: Database = open_database(path, "ingress", MIGRATIONS, url)

    def accept(self, request_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO accepted VALUES (?, ?) ON CONFLICT (request_id) DO NOTHING",
                (request_id, time.time()),
            )

    def is_accepted(self, request_id: str) -> bool:
        with self._db.reader() as conn:
            row = conn.execute("SELECT 1 FROM accepted WHERE request_id = ?", (request_id,))
            return row.fetchone() is not None

    def flow(self, request_id: str) -> FlowOutput | None:
        with self._db.reader() as conn:
            row = conn.execute(
                "SELECT flow FROM flows WHERE request_id = ?", (request_id,)
            ).fetchone()
        return FlowOutput.model_validate_json(row[0]) if row else None

    def rejection(self, request_id: str) -> Rejection | None:
        with self._db.reader() as conn:
            row = conn.execute(
                "SELECT code, reason, dead_letter FROM rejections WHERE request_id = ?",
                (request_id,),
            ).fetchone()
        return Rejection(request_id, row[0], row[1], row[2]) if row else None

    def record(
        self,
        topic: str,
        flows: Iterable[FlowOutput],
        positions: dict[int, int],
        rejections: Iterable[Rejection] = (),
    ) -> None:
        """Store a batch's flows or rejections and the offsets after it in one transaction.
        The first flow output or rejection of a request wins (a redelivered one is the same)."""
        now = time.time()
        rows = [
            (f.request_id, orjson.dumps(f.model_dump(mode="json")).decode(), now) for f in flows
        ]
        rejected = [(r.request_id, r.code, r.reason, r.dlq_position, now) for r in rejections]
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO flows VALUES (?, ?, ?) ON CONFLICT (request_id) DO NOTHING", rows
            )
            conn.executemany(
                "INSERT INTO rejections VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
                rejected,
            )
            conn.executemany(
                "INSERT INTO positions VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                "DO UPDATE SET next_offset = excluded.next_offset",
                [(topic, partition, offset) for partition, offset in positions.items()],
            )

    def positions(self, topic: str) -> dict[int, int]:
        with self._db.reader() as conn:
            rows = conn.execute(
                "SELECT partition, next_offset FROM positions WHERE topic = ?", (topic,)
            ).fetchall()
        return {int(p): int(o) for p, o in rows}

    def close(self) -> None:
        self._db.close()
