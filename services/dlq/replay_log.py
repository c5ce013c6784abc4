"""What the tool replayed (SQLite under the state dir): a DLQ message is replayed once unless
forced, and every replay is kept with where it went."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from services.common.sqlite import connect
from services.common.stores.database import select_in_chunks

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replays (
    dlq_id TEXT NOT NULL,
    replayed_at REAL NOT NULL,
    target_topic TEXT NOT NULL,
    target_partition INTEGER NOT NULL,
    target_offset INTEGER NOT NULL,
    forced INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS replays_by_dlq_id ON replays (dlq_id);
"""


@dataclass(frozen=True)
class ReplayEntry:
    dlq_id: str
    replayed_at: float
    target_topic: str
    target_partition: int
    target_offset: int
    forced: bool


class ReplayLog:
    def __init__(self, path: Path) -> None:
        self._conn: sqlite3.Connection = connect(path)
        self._conn.executescript(_SCHEMA)

    def replayed(self, dlq_ids: Iterable[str]) -> set[str]:
        rows = select_in_chunks(
            self._conn, "SELECT DISTINCT dlq_id FROM replays WHERE dlq_id IN ({marks})", dlq_ids
        )
        return {row[0] for row in rows}

    def record(self, dlq_id: str, topic: str, partition: int, offset: int, forced: bool) -> None:
        self._conn.execute(
            "INSERT INTO replays VALUES (?, ?, ?, ?, ?, ?)",
            (dlq_id, time.time(), topic, partition, offset, int(forced)),
        )

    def history(self, dlq_id: str) -> list[ReplayEntry]:
        rows = self._conn.execute(
            "SELECT * FROM replays WHERE dlq_id = ? ORDER BY replayed_at", (dlq_id,)
        )
        return [ReplayEntry(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def close(self) -> None:
        self._conn.close()
