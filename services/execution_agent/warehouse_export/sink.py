"""What the exporter writes into: a warehouse that takes one batch at a time, idempotently."""

from __future__ import annotations

from typing import Protocol

from services.execution_agent.warehouse_export.outbox import ExportBatch


class ExportTargetError(RuntimeError):
    """The warehouse refused or could not be reached; the outbox keeps the rows for the next
    run."""


class ExportTargetBusyError(ExportTargetError):
    """Another process holds the embedded export file (DuckDB takes one writer, and no
    writer while a reader has it open); the next run tries again."""


class InsightSink(Protocol):
    """`write` must be idempotent: a batch written again (after a crash before the outbox
    was marked) changes nothing, and an older state never replaces a newer one."""

    target: str

    def write(self, batch: ExportBatch) -> None: ...

    def close(self) -> None: ...
