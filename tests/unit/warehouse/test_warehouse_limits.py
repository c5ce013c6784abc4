"""The data agent's warehouse connection bounds DuckDB's memory and threads (a service holds
it for its lifetime; DuckDB's defaults are 80 % of the machine's RAM and a thread per core),
and a one-off command keeps the defaults for its ad-hoc queries."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from demo.seed import seed_warehouse
from services.common.settings import Settings
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.base import WarehouseError
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
from services.data_agent.warehouse.queries import LIST_ACCOUNTS, Query


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A file of its own: DuckDB refuses a second connection to a file that one process
    # already holds with other settings (the shared `demo` warehouse is open unbounded).
    path = tmp_path_factory.mktemp("limits") / "small.duckdb"
    seed_warehouse(path, accounts=3, days=120, seed=5)
    return path


def setting(warehouse: object, name: str) -> str:
    assert isinstance(warehouse, DuckDBWarehouse)
    [(value,)] = warehouse.connection.execute(f"SELECT current_setting('{name}')").fetchall()
    return str(value)


def reference(
    name: str, config: dict[str, str | bool | int | float | list[str]] | None = None
) -> str:
    """How DuckDB itself reports `name` under `config` (e.g. 64MB reads back as 61.0 MiB)."""
    with duckdb.connect(":memory:", config=config or {}) as con:
        [(value,)] = con.execute(f"SELECT current_setting('{name}')").fetchall()
    return str(value)


def test_a_bounded_connection_applies_the_settings(small_warehouse: Path) -> None:
    settings = Settings(
        warehouse_path=small_warehouse, warehouse_memory_limit="64MB", warehouse_threads=1
    )
    warehouse = open_warehouse(settings, bounded=True)
    try:
        assert setting(warehouse, "memory_limit") == reference(
            "memory_limit", {"memory_limit": "64MB"}
        )
        assert setting(warehouse, "threads") == "1"
        assert setting(warehouse, "async_threads") == "1"
        # freed query memory goes back after a bulk free over 1 MB (DuckDB's default: 512 MiB)
        flush = "allocator_bulk_deallocation_flush_threshold"
        assert setting(warehouse, flush) == reference(flush, {flush: "1MB"})
        assert setting(warehouse, flush) != reference(flush)
        # and it still answers the agent's queries
        assert len(warehouse.fetch_all(LIST_ACCOUNTS, {"limit": 100})) == 3
    finally:
        warehouse.close()


def test_the_service_defaults_are_bounded() -> None:
    settings = Settings()
    assert settings.warehouse_threads == 1
    with duckdb.connect(":memory:", config={"memory_limit": settings.warehouse_memory_limit}):
        pass  # DuckDB accepts the default as written
    assert reference("memory_limit", {"memory_limit": settings.warehouse_memory_limit}) != (
        reference("memory_limit")
    )


def test_a_command_keeps_duckdbs_defaults(small_warehouse: Path) -> None:
    warehouse = open_warehouse(Settings(warehouse_path=small_warehouse))
    try:
        assert setting(warehouse, "memory_limit") == reference("memory_limit")
        assert setting(warehouse, "threads") == reference("threads")
    finally:
        warehouse.close()


def test_a_query_over_the_memory_limit_says_which_limit(tmp_path: Path) -> None:
    """A bounded connection that cannot spill (no temporary folder) refuses a query that
    needs more memory with one line naming the limit and the setting that raises it."""
    path = tmp_path / "scratch.duckdb"
    duckdb.connect(str(path)).close()
    grouping = Query(
        "many_groups", "SELECT i AS k, count(*) AS n FROM range(:rows) t(i) GROUP BY k"
    )
    with DuckDBWarehouse(
        path,
        read_only=False,
        config={"memory_limit": "16MB", "threads": 1, "temp_directory": ""},
    ) as warehouse:
        with pytest.raises(WarehouseError) as refused:
            warehouse.fetch_all(grouping, {"rows": 3_000_000})
        message = str(refused.value)
        assert message.startswith("query many_groups needs more than the warehouse")
        assert "(16MB)" in message and "REVOPS_WAREHOUSE_MEMORY_LIMIT" in message
        assert "\n" not in message
        # the connection still answers a query that fits
        assert len(warehouse.fetch_all(grouping, {"rows": 10})) == 10
