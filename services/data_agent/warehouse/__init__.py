"""The warehouse the data agent reads: schema, named queries, DuckDB and Firebolt adapters.

`open_warehouse(settings)` returns the adapter chosen by `REVOPS_WAREHOUSE_BACKEND`. The
adapters are imported when used, so importing this package (e.g. for the CLI's `--help`)
does not load DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.common.settings import Settings, get_settings
from services.data_agent.warehouse.base import Warehouse, WarehouseError

if TYPE_CHECKING:
    from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse


def open_warehouse(settings: Settings | None = None) -> Warehouse:
    """Open the configured warehouse for reading (DuckDB file read-only, or Firebolt)."""
    settings = settings or get_settings()
    backend = settings.warehouse_backend.lower()
    if backend == "duckdb":
        from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse

        return DuckDBWarehouse(settings.resolved_warehouse_path, read_only=True)
    if backend == "firebolt":
        from services.data_agent.warehouse.firebolt_adapter import FireboltWarehouse

        return FireboltWarehouse.from_env()
    raise WarehouseError(f"unknown warehouse backend {settings.warehouse_backend!r}")


def __getattr__(name: str) -> Any:
    if name == "DuckDBWarehouse":
        from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse

        return DuckDBWarehouse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DuckDBWarehouse", "Warehouse", "WarehouseError", "open_warehouse"]
