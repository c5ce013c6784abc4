"""`revops db`: the operational store's schema (SQLite files under the state dir, or the
PostgreSQL database of REVOPS_DATABASE_URL).

    revops db migrate   apply every pending migration (services also do it on start-up)
    revops db status    the version each component is at, and the newest one available
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import typer

from services.common.settings import get_settings
from services.common.stores.components import COMPONENTS, Component
from services.common.stores.database import Database
from services.common.stores.migrations import MigrationError, current_version, migrate, migrations

db_app = typer.Typer(
    help="Operational store: schema migrations (SQLite files, or REVOPS_DATABASE_URL).",
    no_args_is_help=True,
)


def _databases(url: str | None) -> Iterator[tuple[Component, str, Database]]:
    """(component, where, database) for every store to migrate."""
    if url:
        from services.common.stores.postgres import PostgresDatabase

        db = PostgresDatabase(url)
        for component in COMPONENTS:
            yield component, "postgresql", db
        return
    from services.common.stores.sqlite import SQLiteDatabase

    state = get_settings().resolved_state_dir
    for component in COMPONENTS:
        files = sorted(state.glob(component.sqlite_files))
        if not files and "*" not in component.sqlite_files:
            files = [state / component.sqlite_files]
        for path in files:
            yield component, str(path), SQLiteDatabase(Path(path))


@db_app.command("migrate")
def migrate_command(
    url: str = typer.Option(
        None, envvar="REVOPS_DATABASE_URL", show_envvar=True, help="PostgreSQL DSN."
    ),
) -> None:
    """Bring every store's schema to the newest version."""
    try:
        for component, where, db in _databases(url):
            version = migrate(db, component.name, component.migrations)
            typer.echo(f"{component.name}: version {version} ({where})")
    except MigrationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@db_app.command("status")
def status_command(
    url: str = typer.Option(
        None, envvar="REVOPS_DATABASE_URL", show_envvar=True, help="PostgreSQL DSN."
    ),
) -> None:
    """The version each store is at and the newest one this release has."""
    for component, where, db in _databases(url):
        newest = len(migrations(component.migrations, db.dialect.name))
        at = current_version(db, component.name)
        state = "up to date" if at == newest else f"{newest - at} pending"
        typer.echo(f"{component.name}: version {at} of {newest}, {state} ({where})")
