"""`revops insights export [--once]`: the exporter run by hand (or as a side process)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from services.common.command_line import fail
from services.common.settings import Settings
from services.common.stores.database import Database, StoreUnavailableError
from services.execution_agent.warehouse_export.exporter import (
    ExportReport,
    InsightExporter,
    sink_factory,
)
from services.execution_agent.warehouse_export.sink import (
    ExportTargetBusyError,
    ExportTargetError,
)

# A reader (a `revops warehouse query`) holds the embedded file for the length of a query:
# `--once` waits this long for it before giving up.
BUSY_WAIT_S = 15.0
BUSY_RETRY_S = 0.5


def export_command(
    store: Database,
    settings: Settings,
    *,
    once: bool,
    interval_s: float,
    path: Path | None = None,
) -> None:
    open_sink = sink_factory(settings, path)
    target = "Firebolt" if settings.warehouse_backend.lower() == "firebolt" else "DuckDB"
    exporter = InsightExporter(store, open_sink)
    while True:
        try:
            report = _run(exporter, wait_s=BUSY_WAIT_S if once else 0.0)
        except ExportTargetBusyError as exc:
            if once:
                raise fail(str(exc)) from None
            typer.echo(f"waiting: {exc}", err=True)
        except (ExportTargetError, StoreUnavailableError) as exc:
            raise fail(str(exc)) from None
        else:
            if once or report.changes or not report.leased:
                typer.echo(report.line(target))
        if once:
            return
        time.sleep(interval_s)


def _run(exporter: InsightExporter, wait_s: float) -> ExportReport:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return exporter.export()
        except ExportTargetBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(BUSY_RETRY_S)
