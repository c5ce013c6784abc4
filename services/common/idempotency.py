"""Durable record of which idempotency keys a consumer has fully processed.

A key is marked only after the record's outputs were produced (acknowledged by Kafka), and
the offset is committed only after the key is marked. A crash in between makes Kafka
redeliver; the key then says "done" and the record is skipped, so each trigger has one
effect even though delivery is at-least-once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from services.common.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_keys (
    consumer TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    processed_at REAL NOT NULL,
    PRIMARY KEY (consumer, idempotency_key)
) WITHOUT ROWID
"""


# The hourly purge deletes by age; without this index it would scan every key.
_PURGE_INDEX = (
    "CREATE INDEX IF NOT EXISTS processed_keys_processed_at ON processed_keys (processed_at)"
)


class IdempotencyStore:
    def __init__(self, path: Path) -> None:
        self._conn: sqlite3.Connection = connect(path)
        self._conn.execute(_SCHEMA)
        self._conn.execute(_PURGE_INDEX)

    def already_processed(self, consumer: str, keys: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                "SELECT idempotency_key FROM processed_keys "
                f"WHERE consumer = ? AND idempotency_key IN ({marks})",
                [consumer, *chunk],
            )
            found.update(row[0] for row in rows)
        return found

    def mark_processed(self, consumer: str, keys: Iterable[str]) -> None:
        now = time.time()
        rows = [(consumer, key, now) for key in dict.fromkeys(keys)]
        if not rows:
            return
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR IGNORE INTO processed_keys VALUES (?, ?, ?)", rows)

    def processed_at(self, consumer: str, key: str) -> float | None:
        """When `consumer` finished `key` (epoch seconds), while the key is still kept (a
        flow's timeline reads when each stage was done)."""
        row = self._conn.execute(
            "SELECT processed_at FROM processed_keys WHERE consumer = ? AND idempotency_key = ?",
            (consumer, key),
        ).fetchone()
        return None if row is None else float(row[0])

    def purge_older_than(self, seconds: float) -> int:
        cur = self._conn.execute(
            "DELETE FROM processed_keys WHERE processed_at < ?", (time.time() - seconds,)
        )
        return cur.rowcount

    def close(self) -> None:
        self._conn.close()
