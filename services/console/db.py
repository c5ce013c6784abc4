"""The console's store: its own tables (sessions, its audit of replays, the directory of
owners, accounts and deals read from the warehouse, the search index) beside the execution
agent's, so a page joins insights, analyses and the directory in one SQL statement.

Either engine of services/common/stores, as the services choose it (`REVOPS_DATABASE_URL`):
- PostgreSQL: the console's tables live in the database every service shares.
- SQLite: they live in console.db, with the execution agent's revops.db attached. SQLite
  looks a table name that console.db lacks up in the attached file, so the console's SQL
  names the agent's tables plainly, exactly as on PostgreSQL.

The schema is versioned (migrations/<engine>/NNNN_*.sql, component "console"), applied on
start-up and by `revops db migrate`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.common.idempotency import migrate_idempotency
from services.common.stores.database import Database
from services.common.stores.migrations import migrate
from services.common.stores.postgres import PostgresDatabase
from services.common.stores.sqlite import SQLiteDatabase
from services.execution_agent.store import COMPONENT as AGENT_COMPONENT
from services.execution_agent.store import DEFAULT_DB_NAME, Store
from services.execution_agent.store import MIGRATIONS as AGENT_MIGRATIONS

COMPONENT = "console"
MIGRATIONS = Path(__file__).with_name("migrations")
CONSOLE_DB_NAME = "console.db"


class AttachedConsoleDatabase(SQLiteDatabase):
    """console.db, with the execution agent's database attached read-write as `ea`.
    Connections are per thread (the page handlers run in a thread pool); each attaches once."""

    def __init__(self, path: Path | str, execution_db: Path | str) -> None:
        self.execution_db = Path(execution_db)
        super().__init__(path)

    def connect(self) -> sqlite3.Connection:
        conn = super().connect()
        if getattr(self._local, "attached_to", None) is not conn:
            conn.execute("ATTACH DATABASE ? AS ea", (str(self.execution_db),))
            self._local.attached_to = conn
        return conn

    def _init_schema(self) -> None:
        migrate(self, COMPONENT, MIGRATIONS)


def open_console_store(state_dir: Path, url: str | None) -> tuple[Database, Database]:
    """(the console's store, the execution agent's store), both migrated to their newest
    schema (the agent's too: the console may start first).

    On PostgreSQL (`url`) they are one database, which also holds the agents' idempotency
    keys (a flow's stage times); its connections go back to the pool after each
    transaction, since the page handlers run on many short-lived threads."""
    if url:
        db = PostgresDatabase(url, keep_connections=False)
        for component, migrations in (
            (AGENT_COMPONENT, AGENT_MIGRATIONS),
            (COMPONENT, MIGRATIONS),
        ):
            migrate(db, component, migrations)
        migrate_idempotency(db)
        return db, db
    agent = Store(state_dir / DEFAULT_DB_NAME)
    return AttachedConsoleDatabase(state_dir / CONSOLE_DB_NAME, agent.path), agent
