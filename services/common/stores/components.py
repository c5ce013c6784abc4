"""Every component that keeps operational state, with its migrations folder and the SQLite
file(s) it uses in the embedded mode (under the state dir). With PostgreSQL they all share
the one database of `REVOPS_DATABASE_URL`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Component:
    name: str
    migrations: Path
    sqlite_files: str  # a glob under the state dir


COMPONENTS = (
    Component("execution_agent", SERVICES / "execution_agent" / "migrations", "revops.db"),
    Component("webhook_processor", SERVICES / "webhook_processor" / "migrations", "deliveries.db"),
    Component("ingress", SERVICES / "ingress" / "migrations", "ingress.db"),
    Component("console", SERVICES / "console" / "migrations", "console.db"),
    Component("idempotency", SERVICES / "common" / "schema" / "idempotency", "idempotency-*.db"),
    Component("replay_cache", SERVICES / "common" / "schema" / "replay_cache", "replay-*.db"),
)
