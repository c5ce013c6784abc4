"""Versioned migrations on both engines: applied once, and a failing one leaves the schema at
the previous version with the reason (a service refuses to start on it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.common.stores.cli import db_app
from services.common.stores.database import Database
from services.common.stores.migrations import MigrationError, current_version, migrate
from services.common.stores.open import open_database


def _folder(tmp_path: Path, engine: str, files: dict[str, str]) -> Path:
    folder = tmp_path / "migrations"
    (folder / engine).mkdir(parents=True)
    for name, text in files.items():
        (folder / engine / name).write_text(text)
    return folder


def _engine(url: str) -> str:
    return "postgresql" if url else "sqlite"


def _tables(db: Database) -> set[str]:
    with db.reader() as conn:
        if db.dialect.name == "sqlite":
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        return {r[0] for r in rows}


def test_migrations_apply_once_in_order(tmp_path: Path, database_url: str) -> None:
    folder = _folder(
        tmp_path,
        _engine(database_url),
        {
            "0001_first.sql": "CREATE TABLE a (k TEXT PRIMARY KEY);\n-- a comment; not a split\n",
            "0002_second.sql": "CREATE TABLE b (k TEXT);\nINSERT INTO a VALUES ('x');\n",
        },
    )
    db = open_database(tmp_path / "x.db", "demo", folder, database_url)
    assert current_version(db, "demo") == 2
    assert migrate(db, "demo", folder) == 2  # nothing left: the INSERT did not run again
    with db.reader() as conn:
        assert conn.execute("SELECT count(*) FROM a").fetchone()[0] == 1
    assert {"a", "b"} <= _tables(db)


def test_a_failing_migration_keeps_the_previous_version(tmp_path: Path, database_url: str) -> None:
    engine = _engine(database_url)
    folder = _folder(tmp_path, engine, {"0001_first.sql": "CREATE TABLE a (k TEXT);\n"})
    db = open_database(tmp_path / "x.db", "demo", folder, database_url)
    (folder / engine / "0002_broken.sql").write_text(
        "CREATE TABLE half_done (k TEXT);\nALTER TABLE no_such_table ADD COLUMN v TEXT;\n"
    )
    with pytest.raises(MigrationError) as failure:
        open_database(tmp_path / "x.db", "demo", folder, database_url)
    message = str(failure.value)
    assert "0002_broken.sql of demo failed, the schema stays at version 1" in message
    assert "no_such_table" in message and "\n" not in message
    assert current_version(db, "demo") == 1
    assert "half_done" not in _tables(db)  # the whole migration was undone


def test_a_misnumbered_folder_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "sqlite", {"0002_gap.sql": "CREATE TABLE a (k TEXT);\n"})
    with pytest.raises(MigrationError, match="skip one"):
        open_database(tmp_path / "x.db", "demo", folder, "")


def test_revops_db_migrate_and_status(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_STATE_DIR", str(tmp_path))
    from services.common.settings import get_settings

    get_settings.cache_clear()
    try:
        args = ["--url", database_url] if database_url else []
        done = CliRunner().invoke(db_app, ["migrate", *args])
        assert done.exit_code == 0, done.output
        assert "execution_agent: version 1" in done.output
        assert "webhook_processor: version" in done.output
        status = CliRunner().invoke(db_app, ["status", *args])
        assert status.exit_code == 0 and "pending" not in status.output
        assert status.output.count("up to date") == (6 if database_url else 4)
    finally:
        get_settings.cache_clear()
