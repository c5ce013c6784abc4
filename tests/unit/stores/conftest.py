"""Every store of this folder runs on both engines (`database_url`: SQLite, PostgreSQL)."""

from tests.postgres_fixtures import database_url, postgres  # noqa: F401 (fixtures)
