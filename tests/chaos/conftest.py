"""The PostgreSQL fixture for the replicated fault run (tests/postgres_fixtures.py)."""

from tests.postgres_fixtures import postgres  # noqa: F401 (fixture)
