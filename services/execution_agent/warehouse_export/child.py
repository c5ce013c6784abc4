"""The execution agent's export job, run in a child process that exits after the run.

Why not in the agent: the embedded target is a DuckDB file, and DuckDB once loaded stays
loaded. Its library keeps ~40 MB of code resident and its allocator keeps what a run used,
so a job that runs once a minute added 45-90 MB to the agent's RSS for good (the agent is
~110 MB without it). A child gives all of it back when it exits. The agent reads the outbox
count itself first (one SQLite/PostgreSQL statement), so a minute with nothing to export
starts no process.

The child does what the in-process job did (`InsightExporter.export_in_background`): the
same lease, batches and outbox, so a crash of either process leaves the rows for the next
run. It prints the run's report on stdout; a failure is one line on stderr and status 1,
which the agent's housekeeping logs and counts as a failed run.

The child only reads the agent's store while it runs (the lease aside): it writes the seqs
it exported to `--exported-file`, and the agent drops those outbox rows once the child is
done, a few hundred per transaction. Why: on SQLite a write transaction of the child's takes
the file's write lock, and the child runs below the agent's priority, so it could be
descheduled holding it (a 5 ms delete held the lock up to 40 ms); the agent, which writes
its store from its event loop, waited in SQLite's busy handler (sleeps of 1, 2, 5, 10, 15,
20, 25 ms...) with every flow stalled behind it (docs/batch-pipeline.md, "Sixteenth
round"). A row exported and not dropped (the agent stopped in between) is exported again
by the next run: the warehouse writes are idempotent.

    python -m services.execution_agent.warehouse_export.child --db PATH [--export-file PATH]
        [--exported-file PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import structlog

from services.common.processes import (
    PARENT_PID_ENV,
    parent_gone,
    parent_pid,
    process_running,
)
from services.common.settings import PROJECT_ROOT, Settings
from services.common.stores.database import Database, StoreUnavailableError
from services.execution_agent.warehouse_export.exporter import (
    InsightExporter,
    export_path,
    sink_factory,
)
from services.execution_agent.warehouse_export.outbox import ExportOutbox
from services.execution_agent.warehouse_export.sink import ExportTargetError

log = structlog.get_logger("insights_export")

# A run drains the whole outbox; far longer than any run, short enough to free a stuck job.
CHILD_TIMEOUT_S = 600.0
# The child's scheduling priority below the agent's (os.nice increment). The export is
# background work nobody waits on, and it runs in the same CPU quota as the agents: after a
# busy minute a run takes seconds of CPU, which flows arriving meanwhile waited behind (the
# bench's 50 flows/s phase: p50 100-200 ms with a run beside it, ~40 without).
CHILD_NICENESS = 10


class ExportInChildProcess:
    """The `export_insights` housekeeping job of the execution agent (runs in a thread)."""

    def __init__(self, store: Database, settings: Settings, db_path: Path) -> None:
        self.outbox = ExportOutbox(store)
        self.settings = settings
        self.db_path = db_path

    def exported_file(self, pid: int | None = None) -> Path:
        """Where the child of the agent `pid` (this one by default) writes what it exported:
        next to the store, one file per agent (replicas on one host share a state dir)."""
        return self.db_path.with_name(f"{self.db_path.stem}.exported-{pid or os.getpid()}.json")

    def remove_files_of_stopped_agents(self) -> None:
        """An agent stopped after its child exported leaves its file behind; its rows are
        exported again by the next run (harmlessly), so the file is only litter."""
        for path in self.db_path.parent.glob(f"{self.db_path.stem}.exported-*.json"):
            pid = path.stem.rsplit("-", 1)[-1]
            if pid.isdigit() and not process_running(int(pid)):
                path.unlink(missing_ok=True)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            __name__,
            "--db",
            str(self.db_path),
            "--export-file",
            str(export_path(self.settings)),
            "--backend",
            self.settings.warehouse_backend,
            "--exported-file",
            str(self.exported_file()),
        ]

    def environment(self) -> dict[str, str]:
        """The agent's environment; a database URL given in code (not by the environment)
        goes along, so the child opens the same store. Not on the command line: it may hold
        a password."""
        env = dict(os.environ)
        # The child stops between batches once the agent is gone: an agent stopped (or
        # killed) mid-run must not leave an orphan writing into a state folder for minutes.
        env[PARENT_PID_ENV] = str(os.getpid())
        if self.settings.database_url:
            env["REVOPS_DATABASE_URL"] = self.settings.database_url
        return env

    def __call__(self) -> str | None:
        """One run; the child's report line, or None when nothing was pending."""
        if self.outbox.pending_count() == 0:
            return None
        exported_file = self.exported_file()
        exported_file.unlink(missing_ok=True)  # a run that failed after writing it
        self.remove_files_of_stopped_agents()
        try:
            done = subprocess.run(
                self.command(),
                cwd=PROJECT_ROOT,
                env=self.environment(),
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise ExportTargetError(
                f"the insight export did not finish within {CHILD_TIMEOUT_S:.0f} s"
            ) from exc
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
            raise ExportTargetError(f"insight export failed: {lines[-1]}")
        report = (done.stdout.strip().splitlines() or [""])[-1]  # after the child's log lines
        dropped = self._drop_exported(exported_file)
        log.info("insights_export_run", report=report, dropped=dropped)
        return report

    def _drop_exported(self, exported_file: Path) -> int:
        """Drop the outbox rows the child exported (none when it wrote no file: nothing was
        pending, or another exporter held the lease)."""
        try:
            ranges = json.loads(exported_file.read_text())
        except FileNotFoundError:
            return 0
        dropped = self.outbox.drop([(int(first), int(last)) for first, last in ranges])
        exported_file.unlink(missing_ok=True)
        return dropped


def run(db: Path, export_file: Path, backend: str, exported_file: Path | None = None) -> str:
    """The child's work: one `export_in_background` run; its report line. With
    `exported_file` the exported rows stay in the outbox and their seqs are written there
    (as JSON ranges) for the agent to drop; without it each batch drops its own."""
    # Imported here: the agent imports this module and must not open a store at import.
    from services.execution_agent.store import open_store

    settings = Settings(warehouse_backend=backend)
    exporter = InsightExporter(open_store(db), sink_factory(settings, export_file))
    parent = parent_pid()
    report = exporter.export_in_background(
        keep_going=lambda: not parent_gone(parent), leave_exported=exported_file is not None
    )
    target = "Firebolt" if backend.lower() == "firebolt" else "DuckDB"
    if report is None:
        return "the export target is held by a reader; the rows wait for the next run"
    if exported_file is not None and report.exported:
        exported_file.write_text(json.dumps(report.exported))
    return report.line(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True, help="the agent's SQLite store")
    parser.add_argument("--export-file", type=Path, required=True, help="embedded target")
    parser.add_argument("--backend", default="duckdb", help="duckdb | firebolt")
    parser.add_argument(
        "--exported-file", type=Path, help="write the exported seqs here; leave their rows"
    )
    args = parser.parse_args(argv)
    os.nice(CHILD_NICENESS)  # here, not in a preexec_fn: the agent has threads when it forks
    try:
        print(run(args.db, args.export_file, args.backend, args.exported_file))
    except (ExportTargetError, StoreUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
