"""The console's audit trail for changes that have none of their own (dead-letter replays).
Insight changes are written by the insight store to `revops_ai_insight_audit`, with the
signed-in user as the actor."""

from __future__ import annotations

from typing import Any

from contracts.common import utcnow
from services.common.stores.database import Database
from services.console.auth import User
from services.execution_agent.store import to_db_time


class ConsoleAudit:
    def __init__(self, store: Database) -> None:
        self._store = store

    def record(self, user: User, action: str, target: str, detail: str = "") -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO console_audit (at, actor, role, action, target, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (to_db_time(utcnow()), user.name, user.role.value, action, target, detail),
            )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._store.reader() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    "SELECT at, actor, role, action, target, detail FROM console_audit "
                    "ORDER BY audit_id DESC LIMIT ?",
                    (limit,),
                )
            ]
