"""The AI layer's SQLite file (`<state_dir>/model.db`): prompt cache and daily token ledger.

SQLite for the same reasons as the other embedded state (services/common/sqlite.py): no
server, safe with several processes, durable. Replicas that share a state folder share the
cache and the daily budget; each replica with its own folder has its own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.common.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS prompt_cache (
    key TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    model_id TEXT NOT NULL,
    tool_input TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS prompt_cache_age ON prompt_cache (created_at);
CREATE TABLE IF NOT EXISTS token_ledger (
    day TEXT PRIMARY KEY,
    tokens INTEGER NOT NULL DEFAULT 0,
    calls INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0
);
"""


def open_store(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    conn.executescript(SCHEMA)
    return conn


class PromptCache:
    """Answers keyed by `port.cache_key` (prompt inputs + model + sampling parameters).

    Only validated answers are stored, so a hit is as good as a fresh answer and costs no
    tokens: re-analysing an unchanged deal asks the model nothing.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._conn = conn
        self._ttl_s = ttl_s
        self._clock = clock

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT tool_input FROM prompt_cache WHERE key = ? AND created_at >= ?",
            (key, self._clock() - self._ttl_s),
        ).fetchone()
        if row is None:
            return None
        value: dict[str, Any] = orjson.loads(row[0])
        return value

    def put(
        self,
        key: str,
        prompt: str,
        model_id: str,
        tool_input: dict[str, Any],
        tokens_in: int,
        tokens_out: int,
    ) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO prompt_cache (key, prompt, model_id, tool_input, tokens_in, "
            "tokens_out, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                prompt,
                model_id,
                orjson.dumps(tool_input).decode(),
                tokens_in,
                tokens_out,
                self._clock(),
            ),
        )

    def purge_expired(self) -> int:
        cursor = self._conn.execute(
            "DELETE FROM prompt_cache WHERE created_at < ?", (self._clock() - self._ttl_s,)
        )
        return cursor.rowcount


def utc_day() -> str:
    return datetime.now(UTC).date().isoformat()


class DailyTokenBudget:
    """Tokens per UTC day across every analysis (and every process sharing the file).

    A call first reserves its estimate (an atomic conditional UPDATE: two processes cannot
    both take the last tokens), then settles to what the endpoint billed.
    """

    def __init__(
        self, conn: sqlite3.Connection, limit: int, day: Callable[[], str] = utc_day
    ) -> None:
        self._conn = conn
        self.limit = limit
        self._day = day

    def reserve(self, tokens: int) -> str | None:
        """The day the tokens were reserved on, or None when the day's budget is spent."""
        day = self._day()
        self._conn.execute("INSERT OR IGNORE INTO token_ledger (day) VALUES (?)", (day,))
        cursor = self._conn.execute(
            "UPDATE token_ledger SET tokens = tokens + ? WHERE day = ? AND tokens + ? <= ?",
            (tokens, day, tokens, self.limit),
        )
        return day if cursor.rowcount == 1 else None

    def settle(self, day: str, reserved: int, used: int, cost_usd: float) -> None:
        self._conn.execute(
            "UPDATE token_ledger SET tokens = MAX(0, tokens - ? + ?), calls = calls + 1, "
            "cost_usd = cost_usd + ? WHERE day = ?",
            (reserved, used, cost_usd, day),
        )

    def release(self, day: str, reserved: int) -> None:
        self._conn.execute(
            "UPDATE token_ledger SET tokens = MAX(0, tokens - ?) WHERE day = ?", (reserved, day)
        )

    def used(self, day: str | None = None) -> int:
        row = self._conn.execute(
            "SELECT tokens FROM token_ledger WHERE day = ?", (day or self._day(),)
        ).fetchone()
        return int(row[0]) if row else 0
