"""Remembers which token ids (jti) were accepted, so a captured message cannot be re-used.

Kafka delivers at least once: after a crash or a rebalance a consumer reads the same record
again. That is not an attack, and the runtime dedupes it by idempotency key. So a jti seen
again is only a replay when it comes back at a different record position (or with a
different payload); the same record read twice is a benign redelivery.

Entries are keyed by (issuer, jti), so the DLQ replay tool re-signing a message under its own
identity is a new token, not a replay of the original one.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.common.stores.database import Connection, Database, select_in_chunks
from services.common.stores.open import COMMON_SCHEMAS, open_database


@dataclass(frozen=True)
class Sighting:
    """One accepted token: who issued it, which payload, at which record position."""

    issuer: str
    jti: str
    payload_hash: str
    position: str | None


def _is_benign(first: tuple[str, str | None], again: Sighting) -> bool:
    payload_hash, position = first
    return (
        again.position is not None
        and position == again.position
        and payload_hash == again.payload_hash
    )


class ReplayCache(Protocol):
    def check_and_record(self, sighting: Sighting, keep_until: float, now: float) -> bool:
        """Record `sighting`; False if its jti was already accepted elsewhere (a replay)."""
        ...


class BatchReplayCache(ReplayCache, Protocol):
    def check_and_record_many(
        self, sightings: Sequence[Sighting], keep_until: float, now: float
    ) -> list[bool]:
        """`check_and_record` for each sighting in order, as one step (one query, one
        transaction): a jti repeated inside `sightings` is judged against its first one."""
        ...


class InMemoryReplayCache:
    """Bounded TTL cache for one process (tests, the embedded run).

    When full, the oldest entries are evicted first: bounded memory wins over remembering
    everything, so size `max_entries` above the number of messages accepted per TTL.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[str, str | None, float]] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def check_and_record(self, sighting: Sighting, keep_until: float, now: float) -> bool:
        with self._lock:
            return self._check_and_record(sighting, keep_until, now)

    def check_and_record_many(
        self, sightings: Sequence[Sighting], keep_until: float, now: float
    ) -> list[bool]:
        with self._lock:
            return [self._check_and_record(s, keep_until, now) for s in sightings]

    def _check_and_record(self, sighting: Sighting, keep_until: float, now: float) -> bool:
        key = (sighting.issuer, sighting.jti)
        seen = self._entries.get(key)
        if seen is not None and seen[2] > now:
            return _is_benign(seen[:2], sighting)
        self._entries[key] = (sighting.payload_hash, sighting.position, keep_until)
        self._entries.move_to_end(key)
        self._evict(now)
        return True

    def _evict(self, now: float) -> None:
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        # Entries are roughly in expiry order (constant TTL), so expired ones sit at the front.
        while self._entries:
            key, (_, _, keep_until) = next(iter(self._entries.items()))
            if keep_until > now:
                break
            del self._entries[key]


class SharedReplayCache:
    """Durable across restarts and shared: by every process on the host (the SQLite file) or
    by every replica (PostgreSQL with `REVOPS_DATABASE_URL`)."""

    def __init__(self, path: Path, *, purge_every: int = 1000, url: str | None = None) -> None:
        self._db: Database = open_database(
            path, "replay_cache", COMMON_SCHEMAS / "replay_cache", url
        )
        self._lock = threading.RLock()  # purge() runs inside check_and_record() too
        self._purge_every = purge_every
        self._since_purge = 0

    def close(self) -> None:
        self._db.close()

    def check_and_record(self, sighting: Sighting, keep_until: float, now: float) -> bool:
        return self.check_and_record_many([sighting], keep_until, now)[0]

    def _count(self, sightings: int, now: float) -> None:
        self._since_purge += sightings
        if self._since_purge >= self._purge_every:
            self.purge(now)

    def check_and_record_many(
        self, sightings: Sequence[Sighting], keep_until: float, now: float
    ) -> list[bool]:
        if not sightings:
            return []
        with self._lock:
            with self._db.transaction() as conn:
                self._serialise(conn, {s.issuer for s in sightings})
                accepted = self._check_and_record_many(conn, sightings, keep_until, now)
            self._count(len(sightings), now)
        return accepted

    def _serialise(self, conn: Connection, issuers: set[str]) -> None:
        """The read and the write are one step across processes and replicas: SQLite's write
        transaction holds the file lock; in PostgreSQL, a lock per issuer (taken in one
        order, so two batches never wait on each other in a circle)."""
        if self._db.dialect.name == "postgresql":
            for issuer in sorted(issuers):
                conn.execute("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(issuer.encode()),))

    def _check_and_record_many(
        self, conn: Connection, sightings: Sequence[Sighting], keep_until: float, now: float
    ) -> list[bool]:
        seen = self._seen(conn, sightings)
        accepted: list[bool] = []
        new_rows: dict[tuple[str, str], tuple[str, str, str, str | None, float]] = {}
        for sighting in sightings:
            key = (sighting.issuer, sighting.jti)
            row = seen.get(key)
            if row is not None and row[2] > now:
                accepted.append(_is_benign((row[0], row[1]), sighting))
                continue
            seen[key] = (sighting.payload_hash, sighting.position, keep_until)
            new_rows[key] = (*key, sighting.payload_hash, sighting.position, keep_until)
            accepted.append(True)
        conn.executemany(
            "INSERT INTO seen_tokens VALUES (?, ?, ?, ?, ?) ON CONFLICT (issuer, jti) DO UPDATE "
            "SET payload_hash = excluded.payload_hash, position = excluded.position, "
            "keep_until = excluded.keep_until",
            new_rows.values(),
        )
        return accepted

    @staticmethod
    def _seen(
        conn: Connection, sightings: Sequence[Sighting]
    ) -> dict[tuple[str, str], tuple[str, str | None, float]]:
        """The stored entries of the sightings' (issuer, jti): one query per issuer (a batch
        usually has one) and per `LOOKUP_CHUNK` ids, each answered from the primary key."""
        by_issuer: dict[str, list[str]] = {}
        for sighting in sightings:
            by_issuer.setdefault(sighting.issuer, []).append(sighting.jti)
        seen: dict[tuple[str, str], tuple[str, str | None, float]] = {}
        for issuer, jtis in by_issuer.items():
            rows = select_in_chunks(
                conn,
                "SELECT jti, payload_hash, position, keep_until FROM seen_tokens"
                " WHERE issuer = ? AND jti IN ({marks})",
                jtis,
                before=(issuer,),
            )
            for jti, payload_hash, position, until in rows:
                seen[(issuer, jti)] = (payload_hash, position, until)
        return seen

    def purge(self, now: float | None = None) -> int:
        """Delete expired entries; returns how many."""
        with self._lock:
            self._since_purge = 0
            with self._db.transaction() as conn:
                cur = conn.execute(
                    "DELETE FROM seen_tokens WHERE keep_until <= ?",
                    (time.time() if now is None else now,),
                )
                return int(cur.rowcount)
