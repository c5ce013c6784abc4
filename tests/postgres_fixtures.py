"""Pytest fixtures for the stores' two engines (import them into a conftest):

- `postgres`: one PostgreSQL server per test session (tests/postgres_server.py). In CI
  (CI=true) a missing server fails loudly; elsewhere the PostgreSQL cases skip with the reason.
- `database_url`: parametrized over both engines: "" (the embedded SQLite file) and the URL of
  a fresh, empty PostgreSQL database. Pass it as `url=` to a store: each test runs twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from services.common.stores.postgres import close_pools
from tests.postgres_server import PostgresServer, PostgresUnavailableError, postgres_server

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        context = postgres_server()
        server = context.__enter__()
    except PostgresUnavailableError as exc:
        if os.environ.get("CI"):
            raise  # in CI a missing PostgreSQL must fail loudly, never skip
        pytest.skip(f"no PostgreSQL server available: {exc}")
    try:
        yield server
    finally:
        close_pools()
        context.__exit__(None, None, None)


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    yield server.fresh_database()
    close_pools()  # this test's pools; the next test has a database of its own
