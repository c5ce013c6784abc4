"""The ingress's small SQLite index: request ids it accepted, flow outputs and rejections it
saw, and how far it read `revops.flow-results` and the flow-ending DLQs (so a restart
resumes instead of re-reading the topics)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

import orjson

from contracts import FlowOutput
from services.common.dlq import Rejection
from services.common.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accepted (
    request_id TEXT PRIMARY KEY,
    accepted_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flows (
    request_id TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    seen_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejections (
    request_id TEXT PRIMARY KEY,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    dead_letter TEXT NOT NULL,
    seen_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
"""


class FlowIndex:
    def __init__(self, path: Path) -> None:
        self._conn: sqlite3.Connection = connect(path)
        self._conn.executescript(_SCHEMA)

    def accept(self, request_id: str) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO accepted VALUES (?, ?)", (request_id, time.time())
        )

    def is_accepted(self, request_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM accepted WHERE request_id = ?", (request_id,))
        return row.fetchone() is not None

    def flow(self, request_id: str) -> FlowOutput | None:
        row = self._conn.execute(
            "SELECT flow FROM flows WHERE request_id = ?", (request_id,)
        ).fetchone()
        return FlowOutput.model_validate_json(row[0]) if row else None

    def rejection(self, request_id: str) -> Rejection | None:
        row = self._conn.execute(
            "SELECT code, reason, dead_letter FROM rejections WHERE request_id = ?", (request_id,)
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
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR IGNORE INTO flows VALUES (?, ?, ?)", rows)
            self._conn.executemany(
                "INSERT OR IGNORE INTO rejections VALUES (?, ?, ?, ?, ?)", rejected
            )
            self._conn.executemany(
                "INSERT INTO positions VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                "DO UPDATE SET next_offset = excluded.next_offset",
                [(topic, partition, offset) for partition, offset in positions.items()],
            )

    def positions(self, topic: str) -> dict[int, int]:
        rows = self._conn.execute(
            "SELECT partition, next_offset FROM positions WHERE topic = ?", (topic,)
        )
        return {int(p): int(o) for p, o in rows}

    def close(self) -> None:
        self._conn.close()
