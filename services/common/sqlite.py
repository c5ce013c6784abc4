"""One way to open the embedded SQLite state files: WAL, busy timeout, autocommit.

SQLite in WAL mode lets every service process read while one writes, needs no server, and
survives kill -9 (each committed transaction is durable). That is why the embedded state
(idempotency keys, insights, executions, delivery log) lives here and not in DuckDB, whose
file cannot be opened for writing by two processes at once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path, *, timeout_s: float = 30.0) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
