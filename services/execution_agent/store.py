"""The execution agent's state store: insights and their audit trail, executions, account
health, the analysis history and the notification log.

It runs on either engine of services/common/stores (the domain code only sees `Database`):
one SQLite file in WAL mode shared by every process on the host (the embedded default), or
PostgreSQL shared by every replica when `REVOPS_DATABASE_URL` is set (`open_store`). The
schema is versioned: migrations/<engine>/NNNN_*.sql, applied on start-up and by
`revops db migrate`.

Insights and their audit trail also land in the analytics warehouse, through an outbox
written with each change (warehouse_export/, docs/insights-export.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

import orjson

from services.common.settings import get_settings
from services.common.stores.database import Database
from services.common.stores.migrations import migrate
from services.common.stores.sqlite import SQLiteDatabase

COMPONENT = "execution_agent"
MIGRATIONS = Path(__file__).with_name("migrations")
DEFAULT_DB_NAME = "revops.db"


def default_db_path() -> Path:
    return get_settings().resolved_state_dir / DEFAULT_DB_NAME


@overload
def to_db_time(value: datetime) -> str: ...
@overload
def to_db_time(value: None) -> None: ...
@overload
def to_db_time(value: datetime | None) -> str | None: ...
def to_db_time(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with fixed precision, so text order equals time order."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def to_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def from_json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


class Store(SQLiteDatabase):
    """The embedded store: one SQLite file; migrates the schema on first use."""

    def __init__(self, path: Path | str | None = None) -> None:
        super().__init__(path if path is not None else default_db_path())

    def _init_schema(self) -> None:
        conn = self.connect()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"could not switch {self.path} to WAL mode (got {mode})")
        migrate(self, COMPONENT, MIGRATIONS)


def open_store(path: Path | str | None = None, url: str | None = None) -> Database:
    """PostgreSQL when `url` (default: REVOPS_DATABASE_URL) is set, else the SQLite file."""
    url = url if url is not None else get_settings().database_url
    if not url:
        return Store(path)
    from services.common.stores.postgres import PostgresDatabase

    db = PostgresDatabase(url)
    migrate(db, COMPONENT, MIGRATIONS)
    return db
