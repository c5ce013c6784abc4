"""Durable record of which idempotency keys a consumer has fully processed.

A key is marked only after the record's outputs were produced (acknowledged by Kafka), and
the offset is committed only after the key is marked. A crash in between makes Kafka
redeliver; the key then says "done" and the record is skipped, so each trigger has one
effect even though delivery is at-least-once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from services.common.stores.database import Database, select_in_chunks
from services.common.stores.migrations import migrate
from services.common.stores.open import COMMON_SCHEMAS, open_database

COMPONENT = "idempotency"
MIGRATIONS = COMMON_SCHEMAS / "idempotency"


def migrate_idempotency(db: Database) -> None:
    """The keys' tables in `db`, at their newest schema."""
    migrate(db, COMPONENT, MIGRATIONS)


class IdempotencyStore:
    """Keys per consumer group, in the shared store (PostgreSQL with `REVOPS_DATABASE_URL`,
    so every replica of the group sees them) or the service's SQLite file."""

    def __init__(self, path: Path, url: str | None = None, db: Database | None = None) -> None:
        """The SQLite file at `path`, PostgreSQL at `url`, or `db` (already migrated with
        `migrate_idempotency`) when the caller has one."""
        self._db: Database = db or open_database(path, COMPONENT, MIGRATIONS, url)

    def already_processed(self, consumer: str, keys: Iterable[str]) -> set[str]:
        with self._db.reader() as conn:
            rows = select_in_chunks(
                conn,
                "SELECT idempotency_key FROM processed_keys "
                "WHERE consumer = ? AND idempotency_key IN ({marks})",
                keys,
                before=(consumer,),
            )
            return {row[0] for row in rows}

    def mark_processed(self, consumer: str, keys: Iterable[str]) -> None:
        now = time.time()
        rows = [(consumer, key, now) for key in dict.fromkeys(keys)]
        if not rows:
            return
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO processed_keys VALUES (?, ?, ?) "
                "ON CONFLICT (consumer, idempotency_key) DO NOTHING",
                rows,
            )

    def processed_at(self, consumer: str, key: str) -> float | None:
        """When `consumer` finished `key` (epoch seconds), while the key is still kept (a
        flow's timeline reads when each stage was done)."""
        with self._db.reader() as conn:
            row = conn.execute(
                "SELECT processed_at FROM processed_keys "
                "WHERE consumer = ? AND idempotency_key = ?",
                (consumer, key),
            ).fetchone()
        return None if row is None else float(row[0])

    def purge_older_than(self, seconds: float) -> int:
        with self._db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM processed_keys WHERE processed_at < ?", (time.time() - seconds,)
            )
            return int(cur.rowcount)

    def close(self) -> None:
        self._db.close()
