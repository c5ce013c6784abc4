"""Drain the export outbox into the warehouse: the execution agent's housekeeping job
(`export_insights`) and `revops insights export`.

One run: take the lease (or do nothing: another exporter holds it), then batch after batch
read the oldest changes with the current state of their insights, write them into the
warehouse, and drop them from the outbox while renewing the lease. A crash anywhere leaves
the unmarked rows in the outbox; the next run (here or on another replica, once the lease
has run out) writes them again, which changes nothing in the warehouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from services.common.settings import Settings
from services.common.stores.database import Database
from services.execution_agent.warehouse_export.outbox import ExportOutbox, SeqRange, seq_ranges
from services.execution_agent.warehouse_export.sink import ExportTargetBusyError, InsightSink

log = structlog.get_logger("insights_export")

BATCH_SIZE = 500
#: How often a run that leaves its rows in the outbox renews the lease (well inside LEASE_S).
RENEW_EVERY_S = 30.0
EXPORT_FILE_NAME = "insights.duckdb"


@dataclass(frozen=True)
class ExportReport:
    leased: bool  # False: another exporter holds the lease, nothing was done
    batches: int = 0
    changes: int = 0  # outbox rows exported
    insights: int = 0  # insight rows written (current state)
    pending: int = 0  # outbox rows left (not counting `exported`)
    exported: tuple[SeqRange, ...] = ()  # rows exported and left in the outbox to drop

    def line(self, target: str) -> str:
        if not self.leased:
            return "another exporter holds the export lease; nothing exported"
        return (
            f"exported {self.changes} change(s) of {self.insights} insight(s) to {target} "
            f"in {self.batches} batch(es); {self.pending} pending"
        )


def export_path(settings: Settings) -> Path:
    """The embedded export file, next to the operational state."""
    return settings.resolved_state_dir / EXPORT_FILE_NAME


def sink_factory(settings: Settings, path: Path | None = None) -> Callable[[], InsightSink]:
    """The target the settings choose: Firebolt when it is the warehouse, else the embedded
    DuckDB export file (`path`, default `export_path`)."""
    if settings.warehouse_backend.lower() == "firebolt":
        from services.execution_agent.warehouse_export.firebolt_sink import FireboltInsightSink

        return FireboltInsightSink.from_env
    target = path or export_path(settings)

    def open_duckdb() -> InsightSink:
        # Imported here: an agent with nothing to export never loads DuckDB.
        from services.execution_agent.warehouse_export.duckdb_sink import DuckDBInsightSink

        return DuckDBInsightSink(target)

    return open_duckdb


class InsightExporter:
    def __init__(
        self,
        store: Database,
        open_sink: Callable[[], InsightSink],
        batch_size: int = BATCH_SIZE,
        outbox: ExportOutbox | None = None,
    ) -> None:
        self.outbox = outbox or ExportOutbox(store)
        self.open_sink = open_sink
        self.batch_size = batch_size

    def export(
        self,
        max_batches: int | None = None,
        keep_going: Callable[[], bool] = lambda: True,
        *,
        leave_exported: bool = False,
    ) -> ExportReport:
        """One run: everything pending (or `max_batches` batches) into the warehouse. A run
        told to stop (`keep_going` false, asked before each batch after the first) leaves the
        rest in the outbox for the next one.

        Each batch's rows are dropped from the outbox once written, with the lease renewed,
        in one transaction; with `leave_exported` they stay (the report's `exported` says
        which) for the caller to `drop`, and the lease is renewed every `RENEW_EVERY_S`: the
        export child then takes the agent's store's write lock twice a run, not once a
        batch (child.py says why)."""
        if not self.outbox.take_lease():
            return ExportReport(leased=False)
        batches = changes = insights = 0
        exported: list[SeqRange] = []
        after = 0  # the last seq exported (leave_exported)
        renewed = time.monotonic()
        try:
            batch = self.outbox.next_batch(self.batch_size)
            if batch is not None:  # the target is opened (and locked) only when needed
                sink = self.open_sink()
                try:
                    while batch is not None:
                        sink.write(batch)
                        if leave_exported:
                            seq_ranges((p.seq for p in batch.pending), exported)
                            after = batch.pending[-1].seq
                            if time.monotonic() - renewed >= RENEW_EVERY_S:
                                self.outbox.renew_lease()
                                renewed = time.monotonic()
                        else:
                            self.outbox.done(batch.pending)
                        batches += 1
                        changes += len(batch.pending)
                        insights += len(batch.insights)
                        if max_batches is not None and batches >= max_batches:
                            break
                        if not keep_going():
                            break
                        batch = self.outbox.next_batch(self.batch_size, after)
                finally:
                    sink.close()
        finally:
            self.outbox.release_lease()
        report = ExportReport(
            True, batches, changes, insights, self.outbox.pending_count(after), tuple(exported)
        )
        if changes:
            log.info(
                "insights_exported",
                batches=batches,
                changes=changes,
                insights=insights,
                pending=report.pending,
            )
        return report

    def export_in_background(
        self, keep_going: Callable[[], bool] = lambda: True, *, leave_exported: bool = False
    ) -> ExportReport | None:
        """The housekeeping job: a run that finds the embedded file held by a reader is not
        a failure (the rows wait in the outbox for the next run); any other error is."""
        try:
            return self.export(keep_going=keep_going, leave_exported=leave_exported)
        except ExportTargetBusyError as exc:
            log.info("insights_export_deferred", reason=str(exc))
            return None
