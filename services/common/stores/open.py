"""Open a component's store on the engine the settings choose, migrated to its newest schema."""

from __future__ import annotations

from pathlib import Path

from services.common.settings import get_settings
from services.common.stores.database import Database
from services.common.stores.migrations import migrate
from services.common.stores.sqlite import SQLiteDatabase

COMMON_SCHEMAS = Path(__file__).resolve().parent.parent / "schema"


def open_database(
    sqlite_path: Path, component: str, migrations: Path, url: str | None = None
) -> Database:
    """PostgreSQL when `url` (default: REVOPS_DATABASE_URL) is set, else the SQLite file at
    `sqlite_path`. Raises `MigrationError` when the schema cannot be brought up to date."""
    url = url if url is not None else get_settings().database_url
    db: Database
    if url:
        from services.common.stores.postgres import PostgresDatabase

        db = PostgresDatabase(url)
    else:
        db = SQLiteDatabase(sqlite_path)
    migrate(db, component, migrations)
    return db
