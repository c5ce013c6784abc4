"""A small world for the console: a generated warehouse, and the execution agent's store
filled by the real chain without Kafka (data agent's datasets -> decision agent's analyses ->
execution agent), so every page reads what the services really write."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bench.bench_console import Run, analyse
from demo.seed import seed_warehouse
from services.common.settings import Settings
from services.console.app import build_app, build_components, refresh_directory
from services.console.config import ConsoleSettings
from services.console.pages import Components
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.queries import LIST_ACCOUNTS, LIST_OPEN_OPPORTUNITIES

USERS = "alice:operator:tok-alice,victor:viewer:tok-victor,olga:operator:tok-olga"
BASE_URL = "http://console.test"


@dataclass
class World:
    settings: Settings
    deals: list[tuple[str, str]]  # (account id, opportunity id) analysed
    accounts: list[str]  # account ids analysed (consumption)
    as_of: date


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    var_dir = tmp_path_factory.mktemp("console-var")
    settings = Settings(var_dir=var_dir, kafka_bootstrap_servers="127.0.0.1:1")
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
    return World(settings, deals, accounts, as_of)


@pytest.fixture
def components(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Components]:
    """Console components on a private copy of the world's state: tests may change it."""
    monkeypatch.setenv("REVOPS_SECRET_CONSOLE_USERS", USERS)
    state = tmp_path / "state"
    state.mkdir()
    source = sqlite3.connect(world.settings.resolved_state_dir / "revops.db")
    copy = sqlite3.connect(state / "revops.db")
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    settings = world.settings.model_copy(
        update={"state_dir": state, "warehouse_path": world.settings.resolved_warehouse_path}
    )
    components = build_components(settings, ConsoleSettings())
    refresh_directory(settings, components)
    yield components
    components.subjects.datasets.warehouse.close()


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
