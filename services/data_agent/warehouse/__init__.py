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


def open_warehouse(settings: Settings | None = None, *, bounded: bool = False) -> Warehouse:
    """Open the configured warehouse for reading (DuckDB file read-only, or Firebolt).

    `bounded`: a long-running reader (the data agent) caps the embedded engine's memory and
    threads (`REVOPS_WAREHOUSE_MEMORY_LIMIT`, `REVOPS_WAREHOUSE_THREADS`); a one-off command
    keeps DuckDB's defaults (80 % of RAM, a thread per core) for its ad-hoc queries."""
    settings = settings or get_settings()
    backend = settings.warehouse_backend.lower()
    if backend == "duckdb":
        from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse

        return DuckDBWarehouse(
            settings.resolved_warehouse_path,
            read_only=True,
            config=bounded_duckdb_config(settings) if bounded else None,
        )
    if backend == "firebolt":
        from services.data_agent.warehouse.firebolt_adapter import FireboltWarehouse

        return FireboltWarehouse.from_env()
    raise WarehouseError(f"unknown warehouse backend {settings.warehouse_backend!r}")


def open_service_warehouse(settings: Settings) -> Warehouse:
    """The data agent's warehouse: bounded, and for the embedded engine with its subject reads
    answered by a row-store copy (`REVOPS_WAREHOUSE_REPLICA`, `replica.py`), made in the
    background. A source the copy cannot hold faithfully, or a state folder it cannot be
    written to, is read directly, and the log says why."""
    warehouse = open_warehouse(settings, bounded=True)
    if not settings.embedded_warehouse or not settings.warehouse_replica:
        return warehouse
    from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
    from services.data_agent.warehouse.replica import ReplicatedWarehouse, open_replica

    assert isinstance(warehouse, DuckDBWarehouse)
    folder = settings.resolved_state_dir / "warehouse-replica"
    return ReplicatedWarehouse(
        warehouse, lambda stopping: open_replica(warehouse, warehouse.path, folder, stopping)
    )


#: A service's DuckDB connection returns freed memory after any bulk free above this size.
ALLOCATOR_FLUSH_THRESHOLD = "1MB"


def bounded_duckdb_config(settings: Settings) -> dict[str, str | int]:
    """DuckDB settings of a service's warehouse connection. DuckDB's buffer pool keeps the
    file's blocks up to `memory_limit`, and every connection starts `threads` workers plus
    I/O threads; a service reading a few subjects at a time from a worker thread gains
    nothing from either, and each thread that allocates adds to the process's memory.
    DuckDB shares one instance per file within a process: a second connection to the same
    file must use the same settings (it refuses other ones).

    DuckDB's allocator keeps what a query frees for later queries until a single bulk free
    passes `allocator_bulk_deallocation_flush_threshold` (512 MiB by default, which a few
    subjects' reads never reach): a service's RSS then grows by what its queries ever held.
    Handing it back after every bulk free over 1 MB took ~12 MB off the data agent's peak
    RSS at saturation, at no measurable CPU (docs/batch-pipeline.md, "Memory per service")."""
    return {
        "memory_limit": settings.warehouse_memory_limit,
        "threads": settings.warehouse_threads,
        "async_threads": settings.warehouse_threads,
        "allocator_bulk_deallocation_flush_threshold": ALLOCATOR_FLUSH_THRESHOLD,
    }


def __getattr__(name: str) -> Any:
    if name == "DuckDBWarehouse":
        from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse

        return DuckDBWarehouse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DuckDBWarehouse",
    "Warehouse",
    "WarehouseError",
    "bounded_duckdb_config",
    "open_service_warehouse",
    "open_warehouse",
]
