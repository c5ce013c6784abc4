"""A small generated warehouse with known ground truth, shared by the warehouse tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from demo.seed import seed_warehouse
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse

AS_OF = date(2025, 6, 30)
ACCOUNTS = 60
SEED = 11


@dataclass
class Demo:
    path: Path
    truth: dict[str, Any]
    warehouse: DuckDBWarehouse

    def sql(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Direct SQL for test assertions (independent of the code under test)."""
        return self.warehouse.connection.execute(sql, list(params)).fetchall()


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    path = tmp_path_factory.mktemp("warehouse") / "demo.duckdb"
    truth = seed_warehouse(path, accounts=ACCOUNTS, days=365, seed=SEED, as_of=AS_OF)
    wh = DuckDBWarehouse(path)
    yield Demo(path, truth.load(), wh)
    wh.close()
