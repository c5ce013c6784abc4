"""Server-side sessions: the cookie holds a random id, the database its hash, the user, the
role, the CSRF token and a one-shot message for the next page. Signing out deletes the row,
so a stolen cookie dies with it; a new sign-in always gets a new id (no session fixation).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from services.common.stores.database import Database
from services.console.auth import Role, User

COOKIE = "revops_console_session"


@dataclass(frozen=True)
class Session:
    session_hash: str
    user: User
    csrf: str
    expires_at: float

    def csrf_ok(self, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(self.csrf, offered or "")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(self, store: Database, ttl_s: float) -> None:
        self._store = store
        self.ttl_s = ttl_s

    def create(self, user: User) -> str:
        """A new session for `user`; returns the cookie value."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        with self._store.transaction() as conn:
            conn.execute(
                'INSERT INTO console_sessions (session_hash, "user", role, csrf, created_at, '
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    _hash(session_id),
                    user.name,
                    user.role.value,
                    secrets.token_urlsafe(32),
                    now,
                    now + self.ttl_s,
                ),
            )
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._store.reader() as conn:
            row = conn.execute(
                'SELECT session_hash, "user", role, csrf, expires_at FROM console_sessions '
                "WHERE session_hash = ? AND expires_at > ?",
                (_hash(session_id), time.time()),
            ).fetchone()
        if row is None:
            return None
        return Session(
            row["session_hash"],
            User(row["user"], Role(row["role"])),
            row["csrf"],
            row["expires_at"],
        )

    def delete(self, session: Session) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "DELETE FROM console_sessions WHERE session_hash = ?", (session.session_hash,)
            )

    def flash(self, session: Session, message: dict[str, Any]) -> None:
        """A message for the next page this session renders (post-redirect-get)."""
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE console_sessions SET flash = ? WHERE session_hash = ?",
                (orjson.dumps(message).decode(), session.session_hash),
            )

    def take_flash(self, session: Session) -> dict[str, Any] | None:
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT flash FROM console_sessions WHERE session_hash = ?",
                (session.session_hash,),
            ).fetchone()
            if row is None or row["flash"] is None:
                return None
            conn.execute(
                "UPDATE console_sessions SET flash = NULL WHERE session_hash = ?",
                (session.session_hash,),
            )
        message: dict[str, Any] = orjson.loads(row["flash"])
        return message

    def purge_expired(self) -> int:
        with self._store.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM console_sessions WHERE expires_at <= ?", (time.time(),)
            )
            conn.execute(
                "DELETE FROM console_oidc_pending WHERE created_at <= ?", (time.time() - 600,)
            )
        return cursor.rowcount
