"""Versioned schema migrations: plain numbered SQL files per engine, one folder per component.

    <component folder>/sqlite/0001_initial.sql
    <component folder>/postgresql/0001_initial.sql

`revops_schema_versions` records each component's version. Each migration runs in one
transaction with the version bump, so a migration that fails leaves the schema at the
previous version, and the caller (a service starting, or `revops db migrate`) stops with
`MigrationError` naming the file and the database's reason. Concurrent starters (N replicas)
queue on a lock and apply each file once.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.common.stores.database import Connection, Database

VERSIONS_TABLE = "revops_schema_versions"
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration could not be applied; the schema stays at `version`. A service refuses
    to start with it (`revops serve` prints the reason as one line)."""

    def __init__(self, component: str, migration: Path, version: int, reason: str) -> None:
        super().__init__(
            f"schema migration {migration.name} of {component} failed, the schema stays at "
            f"version {version}: {reason}"
        )
        self.component = component
        self.version = version


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path

    def statements(self) -> list[str]:
        """The file's statements (split at `;` ending a line; comments dropped)."""
        lines = [line.split("--", 1)[0] for line in self.path.read_text().splitlines()]
        text = "\n".join(lines)
        return [s.strip() for s in re.split(r";\s*\n", text + "\n") if s.strip()]


def migrations(folder: Path, engine: str) -> list[Migration]:
    found = []
    for path in sorted((folder / engine).glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(folder.name, path, 0, "file name is not NNNN_name.sql")
        found.append(Migration(int(match.group(1)), path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(folder.name, folder / engine, 0, f"versions {versions} skip one")
    return found


def current_version(db: Database, component: str) -> int:
    with db.transaction() as conn:
        _lock(db, conn, VERSIONS_TABLE)  # replicas starting together create it once
        _ensure_versions_table(conn)
        row = conn.execute(
            f"SELECT version FROM {VERSIONS_TABLE} WHERE component = ?", (component,)
        ).fetchone()
    return 0 if row is None else int(row[0])


def migrate(db: Database, component: str, folder: Path) -> int:
    """Apply `folder`'s migrations for `db`'s engine past the recorded version; returns the
    version the schema is at."""
    version = current_version(db, component)
    for migration in migrations(folder, db.dialect.name):
        if migration.version <= version:
            continue
        try:
            with db.transaction() as conn:
                _lock(db, conn, component)
                version = _recorded(conn, component)  # another replica may have gone first
                if migration.version <= version:
                    continue
                for statement in migration.statements():
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {VERSIONS_TABLE} (component, version, name, applied_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (component) DO UPDATE SET "
                    "version = excluded.version, name = excluded.name, "
                    "applied_at = excluded.applied_at",
                    (
                        component,
                        migration.version,
                        migration.path.name,
                        datetime.now(UTC).isoformat(),
                    ),
                )
        except MigrationError:
            raise
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MigrationError(component, migration.path, version, reason) from exc
        version = migration.version
    return version


def _ensure_versions_table(conn: Connection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (component TEXT PRIMARY KEY, "
        "version INTEGER NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )


def _recorded(conn: Connection, component: str) -> int:
    row = conn.execute(
        f"SELECT version FROM {VERSIONS_TABLE} WHERE component = ?", (component,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def _lock(db: Database, conn: Connection, component: str) -> None:
    """PostgreSQL: one migrator per component at a time (released with the transaction).
    SQLite's write transaction already holds the file lock."""
    if db.dialect.name == "postgresql":
        conn.execute("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(component.encode()),))
