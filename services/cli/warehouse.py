"""`revops warehouse ...`: seed the demo warehouse, import CRM exports, check data quality,
list accounts and deals, run a query (with the exported insights attached).

Heavy modules (duckdb, pyarrow, numpy) are imported inside the commands: `revops --help`
imports this module and must stay fast.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from services.common.settings import get_settings
from services.data_agent.warehouse.base import Warehouse, WarehouseError

if TYPE_CHECKING:
    from collections.abc import Callable

    from services.common.progress import Progress
    from services.data_agent.warehouse.loader import LoadOptions, LoadResult
    from services.data_agent.warehouse.queries import Query

warehouse_app = typer.Typer(
    help="The data agent's warehouse (DuckDB or Firebolt): seed, import, check, list, query.",
    no_args_is_help=True,
)

PathOption = Annotated[
    Path | None,
    typer.Option("--path", help="DuckDB file (default: REVOPS_WAREHOUSE_PATH or var/...)."),
]
FromOption = Annotated[Path, typer.Option("--from", help="Folder holding the export's files.")]
QuarantineOption = Annotated[
    Path | None,
    typer.Option(
        help="Load the valid rows and write rejected lines, with their reasons, here "
        "(without it a load with any error loads nothing)."
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(help="The day the data is as of (default: its latest activity), YYYY-MM-DD."),
]
LimitOption = Annotated[int, typer.Option(min=1, help="Problems listed in the report.")]
RulesOption = Annotated[
    Path | None, typer.Option(help="Rules folder with the stage model (stages.yaml).")
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


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


@warehouse_app.command()
def seed(
    accounts: Annotated[int, typer.Option(min=1, help="Number of accounts.")] = 50,
    days: Annotated[int, typer.Option(min=120, help="Days of usage history.")] = 365,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 7,
    as_of: Annotated[str | None, typer.Option(help="Last day of data (default today).")] = None,
    path: PathOption = None,
) -> None:
    """Generate the deterministic demo warehouse and its ground-truth file."""
    from demo.seed import seed_warehouse
    from services.common.progress import Progress

    target = _default_path(path)
    started = time.perf_counter()
    with Progress("warehouse seed", total=accounts, unit="accounts") as progress:
        truth = seed_warehouse(
            target,
            accounts=accounts,
            days=days,
            seed=seed,
            as_of=_parse_date(as_of),
            on_accounts=progress.advance,
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


def _options(
    quarantine: Path | None,
    as_of: str | None,
    limit: int,
    rules_dir: Path | None,
    mapping_name: str = "",
    dry_run: bool = False,
    progress: Progress | None = None,
) -> LoadOptions:
    from services.common.stages import load_stage_model
    from services.data_agent.warehouse.loader import LoadOptions

    return LoadOptions(
        quarantine=quarantine,
        as_of=_parse_date(as_of),
        limit=limit,
        stages=load_stage_model(rules_dir),
        dry_run=dry_run,
        mapping_name=mapping_name,
        progress=progress,
    )


def _run_load(
    run: Callable[[Progress | None], LoadResult], target: Path | None, label: str | None = None
) -> LoadResult:
    """Run a load (with a progress display named `label`), print its report; refusals and bad
    configuration: exit 1, no traceback."""
    import duckdb

    from services.common.progress import Progress
    from services.common.rulefiles import RuleFileError
    from services.data_agent.warehouse.loader import LoadRefused

    try:
        if label is None:
            result = run(None)
        else:
            with Progress(label, unit="steps") as progress:
                result = run(progress)
    except LoadRefused as exc:
        if exc.report.total:
            typer.echo(exc.report.render())
        suffix = f"; {target} is unchanged" if target is not None else ""
        raise _fail(f"load refused, nothing written: {exc.reason}{suffix}") from exc
    except RuleFileError as exc:
        raise _fail(exc.render()) from exc
    except (duckdb.Error, OSError) as exc:
        raise _fail(f"load failed, nothing written: {exc}") from exc
    typer.echo(result.report.render())
    return result


def _print_written(result: LoadResult, target: Path) -> None:
    for name, count in result.counts.items():
        typer.echo(f"  {name:<22} {count:>12,}")
    for name, count in result.quarantined.items():
        typer.echo(f"  quarantined {count:,} line(s) to {name}")
    typer.echo(f"loaded into {target}")


@warehouse_app.command("import")
def import_(
    mapping: Annotated[
        str, typer.Option(help="A preset name (revops warehouse mappings) or a mapping file.")
    ],
    from_dir: FromOption,
    path: PathOption = None,
    quarantine: QuarantineOption = None,
    as_of: AsOfOption = None,
    limit: LimitOption = 50,
    rules_dir: RulesOption = None,
) -> None:
    """Import a CRM export with a mapping; print the data-quality report."""
    from services.common.rulefiles import RuleFileError
    from services.data_agent.warehouse.loader import import_files
    from services.data_agent.warehouse.mapping import load_mapping

    target = _default_path(path)
    try:
        spec = load_mapping(mapping)
    except RuleFileError as exc:
        raise _fail(exc.render()) from exc
    result = _run_load(
        lambda progress: import_files(
            from_dir,
            spec,
            target,
            _options(quarantine, as_of, limit, rules_dir, spec.name or mapping, progress=progress),
        ),
        target,
        "warehouse import",
    )
    _print_written(result, target)


@warehouse_app.command("load")
def load(
    from_dir: Annotated[Path, typer.Option("--from", help="Folder of <table>.csv|.parquet.")],
    path: PathOption = None,
    quarantine: QuarantineOption = None,
    as_of: AsOfOption = None,
    limit: LimitOption = 50,
    rules_dir: RulesOption = None,
) -> None:
    """Load files named after the warehouse tables (docs/import.md); all or nothing."""
    from services.data_agent.warehouse.loader import load_directory

    target = _default_path(path)
    result = _run_load(
        lambda progress: load_directory(
            from_dir,
            target,
            _options(quarantine, as_of, limit, rules_dir, "load", progress=progress),
        ),
        target,
        "warehouse load",
    )
    _print_written(result, target)


@warehouse_app.command()
def check(
    path: PathOption = None,
    from_dir: Annotated[
        Path | None, typer.Option("--from", help="Check an export's files instead (no load).")
    ] = None,
    mapping: Annotated[
        str | None, typer.Option(help="With --from: the preset or mapping file.")
    ] = None,
    as_of: AsOfOption = None,
    limit: LimitOption = 50,
    rules_dir: RulesOption = None,
) -> None:
    """Print the data-quality report of the warehouse (or of files with --from); exit 1
    when it has errors."""
    from services.common.rulefiles import RuleFileError
    from services.data_agent.warehouse.loader import check_warehouse, import_files
    from services.data_agent.warehouse.mapping import identity_mapping, load_mapping

    if from_dir is not None:
        try:
            spec = load_mapping(mapping) if mapping else identity_mapping(_load_files(from_dir))
        except RuleFileError as exc:
            raise _fail(exc.render()) from exc
        options = _options(None, as_of, limit, rules_dir, mapping or "load", dry_run=True)
        result = _run_load(
            lambda _: import_files(from_dir, spec, _default_path(path), options), None
        )
        report = result.report
    else:
        target = _default_path(path)
        _open(target).close()  # a missing or empty warehouse: say how to make one
        try:
            from services.common.stages import load_stage_model

            report = check_warehouse(target, load_stage_model(rules_dir), _parse_date(as_of), limit)
        except RuleFileError as exc:
            raise _fail(exc.render()) from exc
        typer.echo(report.render())
    if report.errors:
        raise typer.Exit(1)


def _load_files(folder: Path) -> dict[str, tuple[Path, list[str]]]:
    from services.data_agent.warehouse.loader import LoadRefused, table_files

    try:
        return table_files(folder)
    except LoadRefused as exc:
        raise _fail(exc.reason) from exc


@warehouse_app.command()
def mappings() -> None:
    """The ready-made import mappings (use with `import --mapping NAME`)."""
    from services.data_agent.warehouse.mapping import load_mapping, preset_names

    for name in preset_names():
        spec = load_mapping(name)
        files = ", ".join(
            f"{s.file}{'' if s.required else ' (optional)'}" for s in spec.sources.values()
        )
        typer.echo(f"{name:<18} {spec.description or ''}")
        typer.echo(f"{'':<18} files: {files}")


def _open(path: Path | None) -> Warehouse:
    from services.data_agent.warehouse import open_warehouse
    from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse

    try:
        return DuckDBWarehouse(path) if path else open_warehouse(get_settings())
    except WarehouseError as exc:
        raise _fail(str(exc)) from exc


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
    from services.data_agent.warehouse.queries import LIST_ACCOUNTS

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
    from services.common.stages import load_stage_model
    from services.data_agent.warehouse.queries import LIST_OPPORTUNITIES, list_open_opportunities

    wh = _open(path)
    try:
        query = list_open_opportunities(load_stage_model()) if open_only else LIST_OPPORTUNITIES
        _print_rows(wh, query, {"limit": limit})
    finally:
        wh.close()


@warehouse_app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One SELECT (the warehouse's SQL dialect).")],
    path: PathOption = None,
    insights: Annotated[
        Path | None,
        typer.Option(
            help="The insights export file ATTACHed next to the DuckDB warehouse "
            "(default: insights.duckdb in the state dir; `revops insights export` writes it)."
        ),
    ] = None,
) -> None:
    """Run one query; with DuckDB, the exported insights (revops_ai_insights,
    revops_ai_insight_audit) can be joined with the warehouse tables. Tab-separated output."""
    import duckdb

    from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
    from services.data_agent.warehouse.queries import Query
    from services.execution_agent.warehouse_export.duckdb_sink import (
        attach_insights,
        detach_insights,
    )
    from services.execution_agent.warehouse_export.exporter import export_path
    from services.execution_agent.warehouse_export.sink import ExportTargetError

    wh = _open(path)
    try:
        if not isinstance(wh, DuckDBWarehouse):  # Firebolt: the tables share its database
            _print_rows(wh, Query("ad_hoc", sql), {})
            return
        export_file = insights or export_path(get_settings())
        if export_file.exists():
            # On this connection itself: the search path is per connection (no cursor).
            attach_insights(wh.connection, export_file)
        elif insights is not None or "revops_ai_insight" in sql:
            raise _fail(
                f"no insights exported yet ({export_file} does not exist): run "
                "`revops insights export --once`"
            )
        try:
            cursor = wh.connection.execute(sql)
        except duckdb.Error as exc:
            raise _fail(f"query failed: {str(exc).splitlines()[0]}") from exc
        typer.echo("\t".join(d[0] for d in cursor.description or []))
        while rows := cursor.fetchmany(1000):
            for row in rows:
                typer.echo("\t".join("" if v is None else str(v) for v in row))
    except (WarehouseError, ExportTargetError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        if isinstance(wh, DuckDBWarehouse):
            detach_insights(wh.connection)
        wh.close()
