"""A small world for the console: a generated warehouse, and the execution agent's store
filled by the real chain without Kafka (data agent's datasets -> decision agent's analyses ->
execution agent), so every page reads what the services really write.

The world is built once per engine (`ENGINES`: the embedded SQLite files, and a PostgreSQL
database as with REVOPS_DATABASE_URL), so every console test runs on both."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from starlette.testclient import TestClient

from bench.bench_console import Run, analyse
from demo.seed import seed_warehouse
from services.common.settings import Settings
from services.common.stores.postgres import close_pools
from services.console.app import build_app, build_components, refresh_directory
from services.console.config import ConsoleSettings
from services.console.pages import Components
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.queries import LIST_ACCOUNTS, LIST_OPEN_OPPORTUNITIES
from tests.postgres_fixtures import ENGINES, database_url, postgres  # noqa: F401 (fixtures)
from tests.postgres_server import PostgresServer

USERS = "alice:operator:tok-alice,victor:viewer:tok-victor,olga:operator:tok-olga"
BASE_URL = "http://console.test"


@dataclass
class World:
    settings: Settings  # database_url set: the PostgreSQL world
    deals: list[tuple[str, str]]  # (account id, opportunity id) analysed
    accounts: list[str]  # account ids analysed (consumption)
    as_of: date


@pytest.fixture(scope="session", params=ENGINES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    var_dir = tmp_path_factory.mktemp("console-var")
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").fresh_database()
    settings = Settings(var_dir=var_dir, kafka_bootstrap_servers="127.0.0.1:1", database_url=url)
    seed_warehouse(settings.resolved_warehouse_path, accounts=10, days=365, seed=11)
    warehouse = open_warehouse(settings)
    try:
        deals = [
            (str(r["sf_account_id"]), str(r["opportunity_id"]))
            for r in warehouse.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": 3})
        ]
        accounts = [
            str(r["sf_account_id"]) for r in warehouse.fetch_all(LIST_ACCOUNTS, {"limit": 3})
        ]
        as_of = DatasetRepository(warehouse).default_as_of()
    finally:
        warehouse.close()
    start = datetime.now(UTC) - timedelta(days=3)
    runs: list[Run] = []
    for day in range(3):  # three analyses of each subject, a day apart: a history to chart
        at = start + timedelta(days=day)
        runs += [(a, o, f"deal-{o}-{day}", at) for a, o in deals]
        runs += [(a, None, f"usage-{a}-{day}", at) for a in accounts]
    analyse(settings, runs)
    close_pools()  # a PostgreSQL world is a template: nobody may stay connected to it
    return World(settings, deals, accounts, as_of)


@pytest.fixture
def components(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Components]:
    """Console components on a private copy of the world's state: tests may change it."""
    monkeypatch.setenv("REVOPS_SECRET_CONSOLE_USERS", USERS)
    state = tmp_path / "state"
    state.mkdir()
    url = world.settings.database_url
    if url:
        url = copy_database(request.getfixturevalue("postgres"), url)
    else:
        source = sqlite3.connect(world.settings.resolved_state_dir / "revops.db")
        copy = sqlite3.connect(state / "revops.db")
        try:
            source.backup(copy)
        finally:
            source.close()
            copy.close()
    settings = world.settings.model_copy(
        update={
            "state_dir": state,
            "warehouse_path": world.settings.resolved_warehouse_path,
            "database_url": url,
        }
    )
    components = build_components(settings, ConsoleSettings())
    refresh_directory(settings, components)
    yield components
    components.subjects.datasets.warehouse.close()
    close_pools()


def copy_database(server: PostgresServer, url: str) -> str:
    """A new database holding what the one at `url` holds (its template), for one test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    template = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return server.database_url(name)


@pytest.fixture
def client(components: Components) -> TestClient:
    return TestClient(build_app(components), base_url=BASE_URL)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: TestClient, token: str = "tok-alice") -> TestClient:
    form = client.get("/signin")
    response = client.post(
        "/signin",
        data={"csrf": csrf_of(form.text), "token": token, "next": "/inbox"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def operator(client: TestClient) -> TestClient:
    return sign_in(client, "tok-alice")
