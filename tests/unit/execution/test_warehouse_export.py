"""The insight export, on both engines of the store (SQLite, PostgreSQL) into a real DuckDB
file: every change enqueued in its own transaction, the warehouse's current state and audit
trail, idempotent re-export, resume after a SIGKILL between the write and the mark, the
single-writer lease, and two exporter processes exporting every change exactly once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from contracts import Subject
from services.common.stores.database import Database
from services.execution_agent.insights import InsightRepository
from services.execution_agent.store import open_store
from services.execution_agent.warehouse_export.columns import AUDIT, INSIGHTS, event_id
from services.execution_agent.warehouse_export.duckdb_sink import DuckDBInsightSink
from services.execution_agent.warehouse_export.exporter import InsightExporter
from services.execution_agent.warehouse_export.outbox import (
    CHANGES_AUDIT_ROWS,
    LEASE_S,
    OUTBOX,
    ExportBatch,
    ExportOutbox,
)
from services.execution_agent.warehouse_export.sink import ExportTargetBusyError
from tests.unit.execution.conftest import make_flag

DEAL = Subject(account_id="ACC-1", opportunity_id="OPP-1")
ACCOUNT = Subject(account_id="ACC-2")


@pytest.fixture
def export_file(tmp_path: Path) -> Path:
    return tmp_path / "insights.duckdb"


def _exporter(store: Database, path: Path, **outbox: Any) -> InsightExporter:
    return InsightExporter(
        store, lambda: DuckDBInsightSink(path), batch_size=3, outbox=ExportOutbox(store, **outbox)
    )


def _outbox(store: Database) -> list[tuple[str, int]]:
    with store.reader() as conn:
        return [
            (r[0], int(r[1]))
            for r in conn.execute(f"SELECT insight_id, version FROM {OUTBOX} ORDER BY seq")
        ]


def _exported_files(state_dir: Path) -> list[Path]:
    """What export children wrote and their agents have not dropped yet."""
    return list(state_dir.glob("revops.exported-*.json"))


def _tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            table.name: con.execute(
                f"SELECT * FROM {table.name} ORDER BY insight_id, version"
            ).fetchall()
            for table in (INSIGHTS, AUDIT)
        }
    finally:
        con.close()


def _some_history(
    repo: InsightRepository, deal: Subject = DEAL, account: Subject = ACCOUNT, run: str = ""
) -> list[str]:
    """Two insights with creations, a re-run, transitions and an action taken: 8 changes."""
    first = repo.upsert_from_flag(deal, make_flag(severity="medium"), f"{run}req-1")
    repo.upsert_from_flag(deal, make_flag(severity="critical"), f"{run}req-2")  # escalated
    repo.transition(first.insight_id, "ack", "alice", "looking")
    repo.transition(first.insight_id, "start", "alice")
    repo.record_action_taken(
        first.insight_id, {"action_id": f"{run}a-1", "channel": "slack", "status": "success"}
    )
    other = repo.upsert_from_flag(account, make_flag(insight_type="usage_decline"), f"{run}req-3")
    repo.transition(other.insight_id, "dismiss", "bob", "seasonal")
    repo.transition(first.insight_id, "resolve", "alice", "call booked")
    return [first.insight_id, other.insight_id]


def test_every_change_enqueues_one_row_in_its_own_transaction(store: Database) -> None:
    repo = InsightRepository(store)
    deal_id, account_id = _some_history(repo)
    assert _outbox(store) == [
        (deal_id, 1),
        (deal_id, 2),
        (deal_id, 3),
        (deal_id, 4),
        (deal_id, 5),
        (account_id, 1),
        (account_id, 2),
        (deal_id, 6),
    ]
    # A redelivered request changes nothing, so it exports nothing either.
    repo.upsert_from_flag(DEAL, make_flag(severity="critical"), "req-2")
    assert len(_outbox(store)) == 8
    # A change undone with the transaction around it leaves no export row behind.
    with pytest.raises(RuntimeError), store.transaction():
        repo.upsert_from_flag(Subject(account_id="ACC-9"), make_flag(), "req-9")
        raise RuntimeError("the batch failed")
    assert len(_outbox(store)) == 8


def test_export_writes_current_state_and_the_audit_trail(
    store: Database, export_file: Path
) -> None:
    repo = InsightRepository(store)
    deal_id, account_id = _some_history(repo)
    report = _exporter(store, export_file).export()
    assert (report.leased, report.changes, report.batches, report.pending) == (True, 8, 3, 0)
    assert _outbox(store) == []

    con = duckdb.connect(str(export_file), read_only=True)
    current = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT insight_id, status, priority, version, resolved_at IS NOT NULL, "
            "json_extract_string(actions_taken, '$[0].action_id') FROM revops_ai_insights"
        ).fetchall()
    }
    trail = con.execute(
        "SELECT insight_id, version, action, from_status, to_status, actor, event_id "
        "FROM revops_ai_insight_audit ORDER BY insight_id = ?, version",
        [account_id],
    ).fetchall()
    con.close()
    assert current == {
        deal_id: ("resolved", "critical", 6, True, "a-1"),
        account_id: ("dismissed", "high", 2, False, None),
    }
    assert [(r[2], r[4]) for r in trail] == [
        ("create", "open"),
        ("rerun", "open"),
        ("ack", "acknowledged"),
        ("start", "in_progress"),
        ("action_taken", "in_progress"),
        ("resolve", "resolved"),
        ("create", "open"),
        ("dismiss", "dismissed"),
    ]
    assert all(r[6] == event_id(r[0], r[1]) for r in trail)
    store_audit = repo.audit(deal_id)
    assert [(a.version, a.actor, a.from_status) for a in store_audit] == [
        (r[1], r[5], r[3]) for r in trail[:6]
    ]


def test_later_changes_update_the_row_and_append_to_the_trail(
    store: Database, export_file: Path
) -> None:
    repo = InsightRepository(store)
    deal = repo.upsert_from_flag(DEAL, make_flag(), "req-1")
    exporter = _exporter(store, export_file)
    exporter.export()
    repo.transition(deal.insight_id, "ack", "alice")
    assert exporter.export().changes == 1
    tables = _tables(export_file)
    [row] = tables[INSIGHTS.name]
    assert row[INSIGHTS.names.index("status")] == "acknowledged"
    assert row[INSIGHTS.names.index("version")] == 2
    assert [r[AUDIT.names.index("action")] for r in tables[AUDIT.name]] == ["create", "ack"]


def _batches_before_and_after_an_ack(store: Database) -> tuple[ExportBatch, ExportBatch]:
    """The outbox's batch after an insight's creation (version 1), and after its ack (2)."""
    repo = InsightRepository(store)
    deal = repo.upsert_from_flag(DEAL, make_flag(), "req-1")
    outbox = ExportOutbox(store)
    created = outbox.next_batch(10)
    repo.transition(deal.insight_id, "ack", "alice")
    acknowledged = outbox.next_batch(10)
    assert created is not None and acknowledged is not None
    return created, acknowledged


def test_an_older_state_never_replaces_a_newer_one(store: Database, export_file: Path) -> None:
    old, new = _batches_before_and_after_an_ack(store)
    sink = DuckDBInsightSink(export_file)
    sink.write(new)  # version 2 first, then the stale batch read before the ack
    sink.write(ExportBatch(old.pending, old.insights, old.events))
    sink.close()
    [row] = _tables(export_file)[INSIGHTS.name]
    assert (row[INSIGHTS.names.index("version")], row[INSIGHTS.names.index("status")]) == (
        2,
        "acknowledged",
    )


def test_a_batch_that_names_a_key_twice_keeps_what_the_newest_change_says(
    store: Database, export_file: Path
) -> None:
    """A batch is merged with one statement per table, which must not meet a key twice: the
    highest version of an insight wins wherever it sits in the batch, and an event is written
    once (what the row-by-row upsert did)."""
    first, second = _batches_before_and_after_an_ack(store)
    for insights in (
        first.insights + second.insights,  # version 1, then 2
        second.insights + first.insights,  # version 2, then 1
    ):
        path = export_file.with_name(f"{len(list(export_file.parent.iterdir()))}.duckdb")
        sink = DuckDBInsightSink(path)
        sink.write(ExportBatch(second.pending, insights, second.events + second.events))
        sink.close()
        tables = _tables(path)
        [row] = tables[INSIGHTS.name]
        assert row[INSIGHTS.names.index("version")] == 2
        assert row[INSIGHTS.names.index("status")] == "acknowledged"
        assert len(tables[AUDIT.name]) == len({e["event_id"] for e in second.events}) == 2


def test_re_exporting_a_batch_changes_nothing(store: Database, export_file: Path) -> None:
    _some_history(InsightRepository(store))
    batch = ExportOutbox(store).next_batch(100)
    assert batch is not None
    for _ in range(2):
        sink = DuckDBInsightSink(export_file)
        sink.write(batch)
        sink.close()
        if _ == 0:
            before = _tables(export_file)
    assert _tables(export_file) == before
    assert len(before[AUDIT.name]) == 8 and len(before[INSIGHTS.name]) == 2


def _export_then_die(state: str, url: str, export_file: str) -> None:
    """An exporter killed (SIGKILL) right after its first batch reached the warehouse and
    before the outbox was told."""
    store = open_store(Path(state) / "revops.db", url=url)

    class DieAfterWrite(DuckDBInsightSink):
        def write(self, batch: ExportBatch) -> None:
            super().write(batch)
            os.kill(os.getpid(), signal.SIGKILL)

    InsightExporter(store, lambda: DieAfterWrite(Path(export_file)), batch_size=100).export()


def test_a_kill_between_write_and_mark_resumes_without_changing_anything(
    store: Database, tmp_path: Path, database_url: str, export_file: Path
) -> None:
    _some_history(InsightRepository(store))
    child = multiprocessing.get_context("spawn").Process(
        target=_export_then_die, args=(str(tmp_path), database_url, str(export_file))
    )
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    written = _tables(export_file)
    assert len(written[AUDIT.name]) == 8  # the batch reached the warehouse ...
    assert len(_outbox(store)) == 8  # ... and the outbox still holds it

    # The dead exporter's lease holds the others off until it runs out.
    assert _exporter(store, export_file).export().leased is False
    later = _exporter(store, export_file, clock=lambda: time.time() + LEASE_S + 1)
    report = later.export()
    assert (report.leased, report.changes, report.pending) == (True, 8, 0)
    assert _tables(export_file) == written


def test_one_exporter_at_a_time_holds_the_lease(store: Database, export_file: Path) -> None:
    InsightRepository(store).upsert_from_flag(DEAL, make_flag(), "req-1")
    first = ExportOutbox(store, holder="first")
    second = ExportOutbox(store, holder="second")
    assert first.take_lease() and not second.take_lease()
    assert first.take_lease()  # renewing is taking it again
    first.release_lease()
    assert second.take_lease()


def _hold_open(path: str, opened: Any, release: Any) -> None:
    con = duckdb.connect(path, read_only=True)
    opened.set()
    release.wait(60)
    con.close()


def test_a_reader_holding_the_file_defers_the_export(store: Database, export_file: Path) -> None:
    repo = InsightRepository(store)
    repo.upsert_from_flag(DEAL, make_flag(), "req-1")
    exporter = _exporter(store, export_file)
    exporter.export()
    repo.upsert_from_flag(ACCOUNT, make_flag(), "req-2")
    ctx = multiprocessing.get_context("spawn")
    opened, release = ctx.Event(), ctx.Event()
    reader = ctx.Process(target=_hold_open, args=(str(export_file), opened, release))
    reader.start()
    try:
        assert opened.wait(60)
        with pytest.raises(ExportTargetBusyError, match="held by another process"):
            exporter.export()
        assert exporter.export_in_background() is None  # housekeeping: not a failure
    finally:
        release.set()
        reader.join(60)
    assert len(_outbox(store)) == 1  # kept for the next run
    assert exporter.export().changes == 1
    assert len(_tables(export_file)[INSIGHTS.name]) == 2


class _RecordingSink:
    """Writes the event ids it exports into a table of the store's own database, so two
    processes' exports can be compared in one place."""

    target = "recording"

    def __init__(self, store: Database, exporter: str) -> None:
        self.store = store
        self.exporter = exporter

    def write(self, batch: ExportBatch) -> None:
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO exported (event_id, exporter) VALUES (?, ?)",
                [(e["event_id"], self.exporter) for e in batch.events],
            )

    def close(self) -> None:
        pass


def _write_and_export(state: str, url: str, worker: int, barrier: Any) -> None:
    store = open_store(Path(state) / "revops.db", url=url)
    repo = InsightRepository(store)
    exporter = InsightExporter(store, lambda: _RecordingSink(store, f"w{worker}"), batch_size=7)
    barrier.wait()
    for n in range(30):  # changes keep coming while both export
        insight = repo.upsert_from_flag(
            Subject(account_id=f"ACC-{worker}-{n}"), make_flag(), f"req-{worker}-{n}"
        )
        repo.transition(insight.insight_id, "ack", f"worker-{worker}")
        exporter.export(max_batches=2)
    deadline = time.monotonic() + 120
    while exporter.outbox.pending_count() and time.monotonic() < deadline:
        exporter.export()
        time.sleep(0.01)


def test_two_exporter_processes_export_every_change_once(
    store: Database, tmp_path: Path, database_url: str
) -> None:
    with store.transaction() as conn:
        conn.execute("CREATE TABLE exported (event_id TEXT NOT NULL, exporter TEXT NOT NULL)")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    workers = [
        ctx.Process(target=_write_and_export, args=(str(tmp_path), database_url, w, barrier))
        for w in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert [w.exitcode for w in workers] == [0, 0]
    with store.reader() as conn:
        exported = [(r[0], r[1]) for r in conn.execute("SELECT event_id, exporter FROM exported")]
    changes = 2 * 30 * 2  # two workers, 30 insights each, created and acknowledged
    assert len(exported) == changes
    assert len({e for e, _ in exported}) == changes  # none twice
    assert _outbox(store) == []


async def test_the_execution_agent_exports_as_a_housekeeping_job(tmp_path: Path) -> None:
    from services.common.settings import Settings
    from services.execution_agent.app import build_runtime

    settings = Settings(
        state_dir=tmp_path, database_url=None, insights_export_interval_s=5, signing_enabled=False
    )
    runtime = await build_runtime(settings, http_port=None)
    [job] = [t for t in runtime.housekeeping if t.name == "export_insights"]
    assert job.interval_s == 5
    repo = InsightRepository(open_store(tmp_path / "revops.db", url=""))
    repo.upsert_from_flag(DEAL, make_flag(), "req-1")
    await job.run_once()
    assert (job.runs, job.failures) == (1, 0)
    [row] = _tables(tmp_path / "insights.duckdb")[INSIGHTS.name]
    assert row[INSIGHTS.names.index("opportunity_id")] == "OPP-1"
    # The child left its rows; the agent dropped them after it, and the child's file.
    assert _outbox(repo.store) == []
    assert _exported_files(tmp_path) == []

    off = Settings(state_dir=tmp_path, insights_export_interval_s=0, signing_enabled=False)
    quiet = await build_runtime(off, http_port=None)
    assert "export_insights" not in [t.name for t in quiet.housekeeping]


def test_a_run_told_to_stop_leaves_the_rest_for_the_next_one(
    store: Database, export_file: Path
) -> None:
    _some_history(InsightRepository(store))  # 8 changes: batches of 3, 3 and 2
    asked: list[int] = []

    def keep_going() -> bool:
        asked.append(1)
        return False

    report = _exporter(store, export_file).export(keep_going=keep_going)
    assert (report.batches, report.changes, report.pending) == (1, 3, 5)
    assert asked == [1]  # asked after the first batch, not before it
    assert _exporter(store, export_file).export().pending == 0


def test_the_export_child_stops_between_batches_once_its_agent_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent names itself to the child; a child whose agent is gone (stopped, or
    killed) writes the batch it holds and leaves the rest in the outbox, instead of running
    on for minutes as an orphan."""
    from services.common.processes import PARENT_PID_ENV
    from services.common.settings import Settings
    from services.execution_agent.warehouse_export.child import ExportInChildProcess, run

    db = tmp_path / "revops.db"
    store = open_store(db, url="")
    job = ExportInChildProcess(store, Settings(state_dir=tmp_path), db)
    assert job.environment()[PARENT_PID_ENV] == str(os.getpid())

    repo = InsightRepository(store)
    for n in range(80):  # 640 changes: more than one batch of the child's (500)
        deal = Subject(account_id=f"ACC-D{n}", opportunity_id=f"OPP-{n}")
        _some_history(repo, deal, Subject(account_id=f"ACC-A{n}"), run=f"{n}-")
    pending = ExportOutbox(store).pending_count()
    assert pending == 640
    # Our own parent is alive, and is not this pid: to the child, its agent is gone.
    monkeypatch.setenv(PARENT_PID_ENV, str(os.getpid()))
    report = run(db, export_file=tmp_path / "insights.duckdb", backend="duckdb")
    assert "500" in report
    assert ExportOutbox(store).pending_count() == pending - 500
    monkeypatch.setenv(PARENT_PID_ENV, str(os.getppid()))  # the agent is there: all of it
    run(db, export_file=tmp_path / "insights.duckdb", backend="duckdb")
    assert ExportOutbox(store).pending_count() == 0


def test_a_batch_reads_the_audit_rows_of_its_own_changes_by_version(
    store: Database, tmp_path: Path
) -> None:
    """A batch carries exactly its changes' audit rows, looked up by (insight_id, version):
    an insight's earlier changes are not read again with every later batch (a run's cost
    grew with each insight's history)."""
    repo = InsightRepository(store)
    deal_id, account_id = _some_history(repo)
    outbox = ExportOutbox(store)
    assert outbox.take_lease()
    first = outbox.next_batch(3)
    assert first is not None
    outbox.done(first.pending)
    second = outbox.next_batch(3)
    assert second is not None
    carried = [(e["insight_id"], e["version"]) for e in second.events]
    assert carried == [(deal_id, 4), (deal_id, 5), (account_id, 1)]
    assert [e["event_id"] for e in second.events] == [event_id(*c) for c in carried]

    sqlite = open_store(tmp_path / "plan.db")  # the embedded engine's plan
    with sqlite.reader() as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN " + CHANGES_AUDIT_ROWS.format(marks="?, ?"), (1, 2)
            )
        )
    assert "ix_insight_audit_version" in plan, plan


def test_the_export_child_runs_below_the_agents_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child lowers its own priority before it exports: flows arriving while a run
    drains a busy minute's changes are scheduled before it."""
    from services.execution_agent.warehouse_export import child

    db = tmp_path / "revops.db"
    open_store(db, url="")
    niced: list[int] = []
    monkeypatch.setattr(child.os, "nice", niced.append)
    assert child.main(["--db", str(db), "--export-file", str(tmp_path / "x.duckdb")]) == 0
    assert niced == [child.CHILD_NICENESS] and child.CHILD_NICENESS > 0


def test_a_run_that_leaves_its_rows_says_which_and_drop_removes_exactly_those(
    store: Database, export_file: Path
) -> None:
    """The export child's way: the run writes the warehouse and leaves the outbox alone
    (no write lock of the agent's store per batch); the agent then drops exactly the rows
    the run exported, not a change made after it read them."""
    repo = InsightRepository(store)
    deal_id, _ = _some_history(repo)  # 8 changes: batches of 3, 3 and 2
    before = _outbox(store)
    report = _exporter(store, export_file).export(leave_exported=True)
    assert (report.batches, report.changes, report.pending) == (3, 8, 0)
    assert _outbox(store) == before  # nothing dropped by the run
    assert sum(last - first + 1 for first, last in report.exported) == 8
    exported = _tables(export_file)
    assert len(exported[AUDIT.name]) == 8

    repo.record_action_taken(deal_id, {"action_id": "a-late", "channel": "slack"})
    assert ExportOutbox(store).drop(report.exported) == 8
    [(left_id, _)] = _outbox(store)
    assert left_id == deal_id
    # What is left is exported by the next run, as ever; the earlier rows are not again.
    later = _exporter(store, export_file).export()
    assert (later.changes, later.pending) == (1, 0)
    assert len(_tables(export_file)[AUDIT.name]) == 9


def test_a_run_that_leaves_its_rows_still_renews_the_lease(
    store: Database, export_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long run keeps the lease: renewed every RENEW_EVERY_S (here: after every batch)."""
    from services.execution_agent.warehouse_export import exporter as exporter_module

    _some_history(InsightRepository(store))
    monkeypatch.setattr(exporter_module, "RENEW_EVERY_S", 0.0)
    renewals: list[str] = []
    outbox = ExportOutbox(store)
    renew = outbox.renew_lease

    def counted_renew() -> None:
        renewals.append("renew")
        renew()

    monkeypatch.setattr(outbox, "renew_lease", counted_renew)
    run = InsightExporter(
        store, lambda: DuckDBInsightSink(export_file), batch_size=3, outbox=outbox
    )
    assert run.export(leave_exported=True).batches == 3
    assert len(renewals) == 3


def test_seq_ranges_are_runs_of_consecutive_seqs() -> None:
    from services.execution_agent.warehouse_export.outbox import seq_ranges

    ranges = seq_ranges([1, 2, 3, 5, 7, 8])
    assert ranges == [(1, 3), (5, 5), (7, 8)]
    assert seq_ranges([9, 11], ranges) == [(1, 3), (5, 5), (7, 9), (11, 11)]
    assert seq_ranges([]) == []


def test_drop_holds_the_write_lock_a_chunk_at_a_time(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.execution_agent.warehouse_export import outbox as outbox_module

    _some_history(InsightRepository(store))  # 8 changes
    with store.reader() as conn:
        seqs = [int(r[0]) for r in conn.execute(f"SELECT seq FROM {OUTBOX} ORDER BY seq")]
    monkeypatch.setattr(outbox_module, "DROP_CHUNK", 3)
    transactions: list[str] = []
    begin = store.transaction

    def counted_transaction() -> Any:
        transactions.append("tx")
        return begin()

    monkeypatch.setattr(store, "transaction", counted_transaction)
    assert ExportOutbox(store).drop(outbox_module.seq_ranges(seqs[:7])) == 7
    assert len(transactions) == 3  # 3 + 3 + 1 rows
    assert len(_outbox(store)) == 1


def test_the_export_child_leaves_its_rows_for_the_agent_to_drop(tmp_path: Path) -> None:
    """The child writes what it exported to a file instead of deleting outbox rows itself;
    the agent drops them after the child is done and removes the file."""
    from services.common.settings import Settings
    from services.execution_agent.warehouse_export.child import ExportInChildProcess, run

    db = tmp_path / "revops.db"
    store = open_store(db, url="")
    _some_history(InsightRepository(store))
    before = _outbox(store)
    job = ExportInChildProcess(store, Settings(state_dir=tmp_path), db)
    exported_file = job.exported_file()
    assert "--exported-file" in job.command()

    report = run(db, tmp_path / "insights.duckdb", "duckdb", exported_file)
    assert report.startswith("exported 8 change(s)")
    assert _outbox(store) == before  # the child dropped nothing
    assert exported_file.exists()
    assert job._drop_exported(exported_file) == 8
    assert _outbox(store) == [] and not exported_file.exists()
    assert job._drop_exported(exported_file) == 0  # no file: nothing exported, nothing to drop


def test_files_of_stopped_agents_are_removed_and_running_ones_kept(tmp_path: Path) -> None:
    """Replicas on one host share the state dir: each agent's child writes its own file; a
    file whose agent is gone is litter and goes at the next run, a running agent's stays."""
    from services.common.settings import Settings
    from services.execution_agent.warehouse_export.child import ExportInChildProcess

    db = tmp_path / "revops.db"
    job = ExportInChildProcess(open_store(db, url=""), Settings(state_dir=tmp_path), db)
    stopped = job.exported_file(pid=2**22 + 12345)  # above any pid_max: never running
    running = job.exported_file(pid=os.getppid())
    assert job.exported_file() != running
    for path in (stopped, running):
        path.write_text("[[1, 2]]")
    job.remove_files_of_stopped_agents()
    assert not stopped.exists() and running.exists()
