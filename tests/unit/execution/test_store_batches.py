"""A batch as one flat, set-based transaction (`Database.all_at_once`) and its fallback to a
savepoint per record (services/common/stores/batch.py), on both engines (`store`).

What must hold: deferred rows go out before any statement that names their table (so the
batch reads its own writes) and before COMMIT; a failure anywhere in the flat try, even
one a caller caught, commits nothing of it; the fallback then leaves exactly the rows of
per-record handling; and the set-based path really saves the per-record statements.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.actions import ActionJob, ActionResult
from services.common.records import Deferred
from services.common.stores import postgres as pg_engine
from services.common.stores.batch import in_one_transaction
from services.common.stores.database import BatchNotAtomicError, Database, past_deferred
from services.common.stores.sqlite import SQLiteDatabase
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import Decision, ExecutionAgent, HandlerOutput
from services.execution_agent.store import open_store
from tests.postgres_fixtures import PostgresServer
from tests.unit.execution.conftest import make_analysis, make_flag, result

COLUMNS = "k, v"


def _scratch(store: Database) -> None:
    with store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS scratch (k TEXT PRIMARY KEY, v INTEGER)")


def _rows(store: Database) -> list[tuple[str, int]]:
    with store.reader() as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT k, v FROM scratch ORDER BY k")]


def test_deferred_rows_go_out_before_a_statement_that_names_their_table(store: Database) -> None:
    _scratch(store)
    with store.all_at_once() as conn:
        store.insert_later(conn, "scratch", COLUMNS, ("a", 1))
        store.insert_later(conn, "scratch", COLUMNS, ("b", 2))
        skipped = conn.execute(past_deferred("scratch") + "SELECT count(*) FROM scratch")
        assert skipped.fetchone()[0] == 0  # held back: the statement said it needs none
        assert conn.execute("SELECT count(*) FROM scratch").fetchone()[0] == 2
        store.insert_later(conn, "scratch", COLUMNS, ("c", 3))  # written at COMMIT
    assert _rows(store) == [("a", 1), ("b", 2), ("c", 3)]


def test_outside_a_batch_a_deferred_write_runs_at_once(store: Database) -> None:
    _scratch(store)
    with store.transaction() as conn:
        store.insert_later(conn, "scratch", COLUMNS, ("a", 1))
        assert conn.execute("SELECT v FROM scratch").fetchone()[0] == 1
        store.write_later(conn, "scratch", "k", "a", {"v": 5}, guard={"v": 1})
        with pytest.raises(LookupError):  # the row is no longer as it was read
            store.write_later(conn, "scratch", "k", "a", {"v": 6}, guard={"v": 1})
    assert _rows(store) == [("a", 5)]


def test_a_row_written_twice_in_a_batch_is_written_once_with_its_first_guard(
    store: Database,
) -> None:
    _scratch(store)
    with store.transaction() as conn:
        conn.execute("INSERT INTO scratch VALUES ('a', 1)")
    with store.all_at_once() as conn:
        store.write_later(conn, "scratch", "k", "a", {"v": 2}, guard={"v": 1})
        store.write_later(conn, "scratch", "k", "a", {"v": 3}, guard={"v": 2})  # its own write
    assert _rows(store) == [("a", 3)]

    with pytest.raises(BatchNotAtomicError), store.all_at_once() as conn:
        store.write_later(conn, "scratch", "k", "a", {"v": 9}, guard={"v": 1})  # stale: it is 3
    assert _rows(store) == [("a", 3)]


def test_a_failure_a_caller_caught_still_rolls_the_whole_batch_back(store: Database) -> None:
    _scratch(store)
    with pytest.raises(BatchNotAtomicError), store.all_at_once() as conn:
        conn.execute("INSERT INTO scratch VALUES ('a', 1)")
        store.insert_later(conn, "scratch", COLUMNS, ("b", 2))
        try:
            with store.transaction():  # no savepoint in a flat batch
                raise RuntimeError("a step failed")
        except RuntimeError:
            pass  # swallowed: the batch must still not commit
    assert _rows(store) == []


def test_a_failing_item_sends_the_batch_record_by_record_and_fails_alone(
    store: Database,
) -> None:
    _scratch(store)

    def step(item: tuple[str, int]) -> str:
        key, value = item
        with store.transaction() as conn:
            store.insert_later(conn, "scratch", COLUMNS, (f"{key}{value}", value))
            if value == 2:
                raise ValueError("poison")
        return f"{key}{value}"

    items = [("x", 1), ("x", 2), ("x", 3), ("y", 4)]
    outcomes = in_one_transaction(store, items, step, key_of=lambda item: item[0])
    assert outcomes[0] == "x1" and outcomes[3] == "y4"
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[2], Deferred)  # after a failure of its key: not attempted
    assert _rows(store) == [("x1", 1), ("y4", 4)]


# -- the execution agent's batches ------------------------------------------------------------


@contextmanager
def statements(store: Database) -> Iterator[Counter[str]]:
    """The statements `store` runs meanwhile, by their first three words (and each whole,
    comments dropped, under `ALL:` and its text)."""
    counted: Counter[str] = Counter()

    def count(sql: str) -> None:
        for part in sql.split(";"):
            words = re.sub(r"/\*.*?\*/", " ", part).split()
            if words:
                counted[" ".join(part.split()[:3]).upper()] += 1
                counted["ALL: " + " ".join(words)] += 1

    if isinstance(store, SQLiteDatabase):
        conn: sqlite3.Connection = store.connect()
        conn.set_trace_callback(count)
        try:
            yield counted
        finally:
            conn.set_trace_callback(None)
        return
    real_execute, real_simple = pg_engine._Connection.execute, pg_engine._Connection._simple_query
    real_many = pg_engine._Connection.executemany

    def execute(self: pg_engine._Connection, sql: str, parameters: object = ()) -> object:
        self._flush_deferred()
        count(sql)
        return real_execute(self, sql, parameters)

    def executemany(self: pg_engine._Connection, sql: str, parameters: object) -> object:
        rows = list(parameters)  # type: ignore[call-overload]
        for _ in rows:  # one statement per row, as SQLite's trace counts them
            count(sql)
        return real_many(self, sql, rows)

    def simple(self: pg_engine._Connection, sql: str) -> None:
        count(sql)
        real_simple(self, sql)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pg_engine._Connection, "execute", execute)
        patch.setattr(pg_engine._Connection, "_simple_query", simple)
        patch.setattr(pg_engine._Connection, "executemany", executemany)
        yield counted


def _outputs(outcomes: list[HandlerOutput | BaseException]) -> list[HandlerOutput]:
    assert all(isinstance(o, HandlerOutput) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, HandlerOutput)]


def test_a_clean_batch_runs_set_based(store: Database, routing: RoutingRules) -> None:
    """No savepoint; one INSERT per table for all the batch's new rows (insights, audit and
    export rows, history, newest analyses, notifications, executions); the flows'
    executions and insights read together and written in one UPDATE per table, however
    many of its results the batch carries."""
    agent = ExecutionAgent(store, routing)
    flows = 6
    decisions = [
        (
            f"ACC-{n}",
            Decision(
                make_analysis(
                    request_id=f"req-{n}",
                    account_id=f"ACC-{n}",
                    flags=[make_flag(severity="critical")],
                )
            ),
        )
        for n in range(flows)
    ]
    with statements(store) as decided:
        jobs = [job for o in _outputs(agent.handle_decisions(decisions)) for job in o.jobs]
    assert len(jobs) >= 2 * flows  # several results per flow below
    assert decided["SAVEPOINT NESTED_0"] + decided["SAVEPOINT NESTED_1"] == 0
    for table in (  # one multi-row INSERT per table for the whole batch
        "INSIGHT_AUDIT",
        "INSIGHT_EXPORT_OUTBOX",
        "INSIGHTS",
        "ANALYSIS_HISTORY",
        "LATEST_ANALYSIS",
        "NOTIFICATIONS",
        "EXECUTIONS",
    ):
        assert decided[f"INSERT INTO REVOPS_AI_{table}"] == 1, table

    with statements(store) as recorded:
        _outputs(agent.handle_action_results([(job.account_id, result(job)) for job in jobs]))
    assert recorded["SAVEPOINT NESTED_0"] + recorded["SAVEPOINT NESTED_1"] == 0
    assert recorded["SELECT * FROM"] == 2  # the executions, then the insights (locked)
    assert recorded["UPDATE REVOPS_AI_EXECUTIONS SET"] == 1  # every flow's, in one
    assert recorded["UPDATE REVOPS_AI_INSIGHTS SET"] == 1  # every insight's, in one
    assert recorded["INSERT INTO REVOPS_AI_INSIGHT_AUDIT"] == 1

    for job in jobs:  # every result stands, on the execution and on its insight
        execution = agent.executions.get(job.request_id)
        assert job.action_id in execution.state.results
        assert job.insight_id is not None
        taken = agent.insights.get(job.insight_id).actions_taken
        assert job.action_id in {a["action_id"] for a in taken}
    audit = agent.insights.audit(jobs[0].insight_id or "")
    assert [a.version for a in audit] == list(range(1, len(audit) + 1))  # no version lost


# -- a batch of decisions: its insight reads, together ----------------------------------------

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def twin(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Database:
    """A second, empty store on the same engine as `store`."""
    if not database_url:
        return open_store(tmp_path / "twin.db")
    server: PostgresServer = request.getfixturevalue("postgres")
    return open_store(tmp_path / "unused.db", url=server.fresh_database())


def _decision(
    request_id: str, account_id: str, *flags: tuple[str, str], says: str = "No calls"
) -> Decision:
    analysis = make_analysis(
        request_id=request_id,
        account_id=account_id,
        flags=[make_flag(sev, kind, description=says) for sev, kind in flags],
    )
    return Decision(analysis, received_at=AT)


def _history(agent: ExecutionAgent) -> list[tuple[object, ...]]:
    """Every insight and audit row, without the wall-clock times."""
    rows: list[tuple[object, ...]] = []
    for insight in sorted(agent.insights.list(limit=100), key=lambda i: i.insight_id):
        rows.append((insight.insight_id, insight.status, insight.priority, insight.version))
        rows += [
            (a.version, a.action, a.from_status, a.to_status, a.note)
            for a in agent.insights.audit(insight.insight_id)
        ]
    return rows


def _outcome(output: HandlerOutput) -> tuple[object, ...]:
    return (
        [(i.insight_id, i.status, i.priority, i.version) for i in output.insights],
        sorted((j.action_id, j.template, j.updates_ticket, j.ticket_id) for j in output.jobs),
    )


def test_a_batch_of_decisions_reads_its_insights_together_with_per_record_results(
    store: Database, twin: Database, routing: RoutingRules
) -> None:
    """Two statements read every insight a clean batch of decisions upserts (the active
    and newest of each subject and type, locked; what each request wrote before), one the
    notification log of its subjects, and the batch ends exactly as the same decisions
    handled one by one: a re-run updating the open ticket (its id known), a reopen, a
    create, a second decision on the batch's own new insight and ticket, a re-run quiet
    in its cooldown, a redelivery."""
    before = [
        ("ACC-0", _decision("req-a0", "ACC-0", ("high", "missing_data"))),
        ("ACC-1", _decision("req-a1", "ACC-1", ("high", "missing_data"))),
        ("ACC-3", _decision("req-a3", "ACC-3", ("high", "missing_data"))),
    ]
    batch = [
        ("ACC-0", _decision("req-b0", "ACC-0", ("critical", "missing_data"))),  # escalated
        ("ACC-1", _decision("req-b1", "ACC-1", ("high", "missing_data"))),  # reopened
        ("ACC-2", _decision("req-b2", "ACC-2", ("high", "missing_data"))),  # created
        (
            "ACC-2",
            _decision("req-b3", "ACC-2", ("critical", "missing_data"), ("low", "stalled")),
        ),  # the batch's own insight escalated, and a new type
        ("ACC-3", _decision("req-b4", "ACC-3", ("high", "missing_data"), says="Other")),
        ("ACC-0", before[0][1]),  # a redelivery: nothing new
    ]
    agents = [ExecutionAgent(s, routing) for s in (store, twin)]
    for agent in agents:
        for _, decision in before:
            out = agent.handle_decision(decision.analysis, received_at=AT)
            for job in out.jobs:
                ticket = {"ticket_id": f"T-{job.account_id}"} if job.channel == "ticket" else None
                agent.handle_action_result(result(job, response=ticket))
        closed = agent.insights.list(account_id="ACC-1")[0]
        agent.insights.transition(closed.insight_id, "ack", "tester")
        agent.insights.transition(closed.insight_id, "resolve", "tester")

    with statements(store) as counted:
        batched = _outputs(agents[0].handle_decisions(batch))
    one_by_one = [
        agents[1].handle_decision(d.analysis, d.flow_id, d.correlation_id, d.received_at)
        for _, d in batch
    ]

    assert counted["SAVEPOINT NESTED_0"] + counted["SAVEPOINT NESTED_1"] == 0  # no fallback
    insight_reads = [
        sql
        for sql, n in counted.items()
        for _ in range(n)
        if sql.startswith("ALL: SELECT")
        and "revops_ai_insights" in sql
        and "revops_ai_notifications" not in sql  # the planner's, not the upsert's
    ]
    assert len(insight_reads) == 2, insight_reads
    log_reads = [s for s in counted if s.startswith("ALL: SELECT") and "notifications" in s]
    assert [counted[s] for s in log_reads] == [1], log_reads
    assert [_outcome(o) for o in batched] == [_outcome(o) for o in one_by_one]
    assert _history(agents[0]) == _history(agents[1])
    upserted = [(i.account_id, i.type, i.priority.value) for o in batched[:4] for i in o.insights]
    assert upserted == [
        ("ACC-0", "missing_data", "critical"),
        ("ACC-1", "missing_data", "high"),
        ("ACC-2", "missing_data", "high"),
        ("ACC-2", "missing_data", "critical"),  # the batch's own insight, escalated
        ("ACC-2", "stalled", "low"),
    ]
    assert batched[-1].insights == []  # the redelivery re-publishes; it upserts nothing
    updates = {(j.account_id, j.updates_ticket is not None, j.ticket_id) for j in jobs_of(batched)}
    assert ("ACC-0", True, "T-ACC-0") in updates  # the open ticket, its id from the log
    assert ("ACC-2", True, None) in updates  # the ticket the batch itself opened
    assert ("ACC-1", False, None) in updates  # the resolved insight's ticket is closed
    reopened, updated = batched[1], batched[4]  # ACC-1's slack alert, reopened: in cooldown
    assert {j.channel for j in reopened.jobs} >= {"ticket"}
    assert not any(j.channel == "slack" for j in reopened.jobs)
    assert updated.insights[0].description == "Other"
    assert not any(j.channel == "slack" for j in updated.jobs)  # `updated` is not sent on
    notes = [row[4] for row in _history(agents[0]) if len(row) == 5 and row[1] == "reopen"]
    assert len(notes) == 1 and "resolved" in str(notes[0])


def jobs_of(outputs: list[HandlerOutput]) -> list[ActionJob]:
    return [job for output in outputs for job in output.jobs if job.channel == "ticket"]


# -- a batch's writes, one statement per table: the same rows as record by record --------------


def _stored(store: Database) -> list[list[tuple[object, ...]]]:
    """What the decision and result paths write, without the wall-clock times."""
    queries = (
        "SELECT request_id, analysis_type, account_id, analyzed_at, headline_score "
        "FROM revops_ai_analysis_history ORDER BY request_id",
        "SELECT subject_key, analysis_type, request_id, analyzed_at, headline_score "
        "FROM revops_ai_latest_analysis ORDER BY subject_key, analysis_type",
        "SELECT action_id, route, insight_id, event, priority, ticket_of, request_id, sent_at "
        "FROM revops_ai_notifications ORDER BY action_id",
        "SELECT request_id, version, execution_status FROM revops_ai_executions "
        "ORDER BY request_id",
        "SELECT insight_id, status, priority, version, actions_taken FROM revops_ai_insights "
        "ORDER BY insight_id",
    )
    with store.reader() as conn:
        return [[tuple(row) for row in conn.execute(sql)] for sql in queries]


def test_a_batchs_newest_analysis_per_subject_is_the_one_record_by_record_keeps(
    store: Database, twin: Database, routing: RoutingRules
) -> None:
    """One upsert of the newest analyses for a batch that holds several of one subject, a
    late one among them (it joins the history only) and a tie (the later one wins), on a
    subject whose stored newest analysis is newer still (it stays)."""
    hour = timedelta(hours=1)

    def decision(request_id: str, account_id: str, at: datetime) -> Decision:
        flags = [make_flag("high", "missing_data")]
        analysis = make_analysis(request_id=request_id, account_id=account_id, flags=flags)
        return Decision(analysis, received_at=at)

    before = [("ACC-7", decision("req-7a", "ACC-7", AT + 5 * hour))]
    batch = [
        ("ACC-6", decision("req-6a", "ACC-6", AT + 2 * hour)),
        ("ACC-6", decision("req-6b", "ACC-6", AT + hour)),  # late
        ("ACC-6", decision("req-6c", "ACC-6", AT + 2 * hour)),  # a tie: the later one
        ("ACC-7", decision("req-7b", "ACC-7", AT + 4 * hour)),  # older than the stored one
    ]
    agents = [ExecutionAgent(s, routing) for s in (store, twin)]
    for agent in agents:
        _outputs(agent.handle_decisions(before))
    with statements(store) as counted:
        _outputs(agents[0].handle_decisions(batch))
    for _, d in batch:
        agents[1].handle_decision(d.analysis, d.flow_id, d.correlation_id, d.received_at)

    assert counted["SAVEPOINT NESTED_0"] + counted["SAVEPOINT NESTED_1"] == 0  # no fallback
    assert counted["INSERT INTO REVOPS_AI_LATEST_ANALYSIS"] == 1
    assert _stored(store) == _stored(twin)
    newest = {row[0]: row[2] for row in _stored(store)[1]}
    assert newest == {"ACC-6|OPP-1": "req-6c", "ACC-7|OPP-1": "req-7a"}


def test_a_version_conflict_in_a_batchs_update_falls_back_to_record_by_record(
    store: Database, twin: Database, routing: RoutingRules
) -> None:
    """A row changed between the batch's read and its one UPDATE of the table (here: by
    the batch's own transaction, after it locked the rows) matches no row of the
    multi-row UPDATE: the batch is rolled back whole and runs record by record, which
    ends exactly as the results handled one by one."""
    agents = [ExecutionAgent(s, routing) for s in (store, twin)]
    decisions = [
        (f"ACC-{n}", _decision(f"req-{n}", f"ACC-{n}", ("critical", "missing_data")))
        for n in range(3)
    ]
    jobs = []
    for agent in agents:
        jobs = jobs_of_all(_outputs(agent.handle_decisions(decisions)))
    results = [(job.account_id, result(job)) for job in jobs]

    locked = agents[0]._lock_for_results
    bumped: list[str] = []

    def lock_then_change_one(batch: list[tuple[object, ActionResult]]) -> None:
        locked(batch)
        with store.transaction() as conn:  # after the read: the version the batch holds
            conn.execute(
                "UPDATE revops_ai_executions SET version = version + 7 WHERE request_id = ?",
                (jobs[0].request_id,),
            )
        bumped.append(jobs[0].request_id)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(agents[0], "_lock_for_results", lock_then_change_one)
        with statements(store) as counted:
            batched = _outputs(agents[0].handle_action_results(results))
    one_by_one = [agents[1].handle_action_result(r) for _, r in results]

    assert bumped == [jobs[0].request_id]  # the first try ran, with the conflict
    assert counted["UPDATE REVOPS_AI_EXECUTIONS SET"] >= 2  # the multi-row one, then per record
    assert counted["SAVEPOINT NESTED_1"] == len(results)  # record by record after it
    assert [o.execution.version for o in batched] == [o.execution.version for o in one_by_one]
    assert _stored(store) == _stored(twin)  # the bump was rolled back with the first try


def test_a_row_a_batch_inserts_that_is_there_already_falls_back_to_record_by_record(
    store: Database, twin: Database, routing: RoutingRules
) -> None:
    """The history keeps one row per request (`ON CONFLICT DO NOTHING`): a batch's INSERT
    that skips a row is not what its steps assumed, so the batch runs record by record,
    where the row already there is kept as it is."""
    batch = [
        (f"ACC-{n}", _decision(f"req-{n}", f"ACC-{n}", ("high", "missing_data"))) for n in range(3)
    ]
    agents = [ExecutionAgent(s, routing) for s in (store, twin)]
    for s in (store, twin):
        with s.transaction() as conn:
            conn.execute(
                "INSERT INTO revops_ai_analysis_history (request_id, analysis_type, "
                "account_id, analyzed_at, recorded_at, result) VALUES (?, ?, ?, ?, ?, ?)",
                ("req-1", "deal_quality", "ACC-1", "2026-01-01T00:00:00.000000+00:00", "x", "{}"),
            )
    with statements(store) as counted:
        batched = _outputs(agents[0].handle_decisions(batch))
    one_by_one = [
        agents[1].handle_decision(d.analysis, d.flow_id, d.correlation_id, d.received_at)
        for _, d in batch
    ]

    assert counted["SAVEPOINT NESTED_1"] == len(batch)  # the fallback ran
    assert [_outcome(o) for o in batched] == [_outcome(o) for o in one_by_one]
    assert _stored(store) == _stored(twin)
    kept = [row for row in _stored(store)[0] if row[0] == "req-1"]
    assert kept == [("req-1", "deal_quality", "ACC-1", "2026-01-01T00:00:00.000000+00:00", None)]


def test_a_multi_row_update_with_one_stale_row_updates_none(store: Database) -> None:
    _scratch(store)
    with store.transaction() as conn:
        conn.execute("INSERT INTO scratch VALUES ('a', 1), ('b', 1), ('c', 1)")
    with pytest.raises(BatchNotAtomicError), store.all_at_once() as conn:
        for key, read in (("a", 1), ("b", 0), ("c", 1)):  # b: not as it was read
            store.write_later(conn, "scratch", "k", key, {"v": 2}, guard={"v": read})
    assert _rows(store) == [("a", 1), ("b", 1), ("c", 1)]


def jobs_of_all(outputs: list[HandlerOutput]) -> list[ActionJob]:
    return [job for output in outputs for job in output.jobs]
