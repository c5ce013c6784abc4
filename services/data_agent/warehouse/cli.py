"""`revops warehouse ...`: seed the demo warehouse, load CSV/Parquet, list accounts/deals."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from services.common.settings import get_settings
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.base import Warehouse, WarehouseError
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
from services.data_agent.warehouse.generator.seed import seed_warehouse
from services.data_agent.warehouse.loader import LoadError, load_directory
from services.data_agent.warehouse.queries import (
    LIST_ACCOUNTS,
    LIST_OPEN_OPPORTUNITIES,
    LIST_OPPORTUNITIES,
    Query,
)

warehouse_app = typer.Typer(help="The data agent's warehouse (DuckDB embedded or Firebolt).")

PathOption = Annotated[
    Path | None,
    typer.Option("--path", help="DuckDB file (default: REVOPS_WAREHOUSE_PATH or var/...)."),
]


def _default_path(path: Path | None) -> Path:
    return path or get_settings().resolved_warehouse_path


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@warehouse_app.command()
def seed(
    accounts: Annotated[int, typer.Option(min=1, help="Number of accounts.")] = 50,
    days: Annotated[int, typer.Option(min=120, help="Days of usage history.")] = 365,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 7,
    as_of: Annotated[str | None, typer.Option(help="Last day of data (default today).")] = None,
    path: PathOption = None,
) -> None:
    """Generate the deterministic demo warehouse and its ground-truth file."""
    target = _default_path(path)
    started = time.perf_counter()
    truth = seed_warehouse(
        target, accounts=accounts, days=days, seed=seed, as_of=_parse_date(as_of)
    )
    elapsed = time.perf_counter() - started
    rows = truth.summary["rows"]
    total = sum(rows.values())
    typer.echo(
        f"warehouse {target} as of {truth.params['as_of']} ({elapsed:.1f}s, "
        f"{total / elapsed:,.0f} rows/s)"
    )
    for name, count in rows.items():
        typer.echo(f"  {name:<22} {count:>12,}")
    typer.echo(f"ground truth {truth.path}")


@warehouse_app.command("load")
def load(
    from_dir: Annotated[Path, typer.Option("--from", help="Folder of <table>.csv|.parquet.")],
    path: PathOption = None,
) -> None:
    """Import tables from CSV/Parquet files (all or nothing)."""
    target = _default_path(path)
    try:
        counts = load_directory(from_dir, target)
    except LoadError as exc:
        typer.echo(f"load refused, nothing changed: {exc}", err=True)
        raise typer.Exit(1) from exc
    for name, count in counts.items():
        typer.echo(f"  {name:<22} {count:>12,}")
    typer.echo(f"loaded into {target}")


def _open(path: Path | None) -> Warehouse:
    try:
        return DuckDBWarehouse(path) if path else open_warehouse(get_settings())
    except WarehouseError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


def _print_rows(warehouse: Warehouse, query: Query, params: dict[str, Any]) -> None:
    header_done = False
    for chunk in warehouse.fetch_chunks(query, params):
        for row in chunk:
            if not header_done:
                typer.echo("\t".join(row))
                header_done = True
            typer.echo("\t".join("" if v is None else str(v) for v in row.values()))


@warehouse_app.command()
def accounts(
    limit: Annotated[int, typer.Option(min=1)] = 20,
    path: PathOption = None,
) -> None:
    """List accounts (id first)."""
    wh = _open(path)
    try:
        _print_rows(wh, LIST_ACCOUNTS, {"limit": limit})
    finally:
        wh.close()


@warehouse_app.command()
def opportunities(
    open_only: Annotated[bool, typer.Option("--open", help="Only open deals.")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    path: PathOption = None,
) -> None:
    """List opportunities (id first)."""
    wh = _open(path)
    try:
        _print_rows(
            wh, LIST_OPEN_OPPORTUNITIES if open_only else LIST_OPPORTUNITIES, {"limit": limit}
        )
    finally:
        wh.close()
