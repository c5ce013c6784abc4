"""A consumed batch of jobs enters the outbox in ONE transaction, each job in a savepoint:
a job the database refuses is rolled back alone (even a half-written one), later jobs of its
Kafka key are deferred, and every other job is stored and delivered. On the real SQLite file
and on a real PostgreSQL server (`database_url` runs each test on both)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest

from contracts.actions import ActionStatus
from services.common.records import Deferred
from services.webhook_processor.delivery_log import DELIVERED, FAILED, PENDING
from services.webhook_processor.engine import Intake
from tests.support import HttpRecorder, SmtpRecorder
from tests.unit.webhooks.conftest import Harness, build_harness, make_config, make_job

# A row the database refuses, as a broken disk, a constraint or a bug would: the INSERT of
# any job whose action_id starts with "poison", and the second write (the result) of a
# refused job whose action_id starts with "half" (its first write succeeded).
SQLITE_POISON = [
    "CREATE TRIGGER poison_insert BEFORE INSERT ON outbox WHEN NEW.action_id LIKE 'poison%'"
    " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
    "CREATE TRIGGER poison_result BEFORE UPDATE ON outbox"
    " WHEN NEW.action_id LIKE 'half%' AND NEW.result IS NOT NULL"
    " BEGIN SELECT RAISE(ABORT, 'poisoned result'); END",
]
POSTGRES_POISON = [
    "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " RAISE EXCEPTION 'poisoned row %', NEW.action_id; END $$",
    "CREATE TRIGGER poison_insert BEFORE INSERT ON outbox FOR EACH ROW"
    " WHEN (NEW.action_id LIKE 'poison%') EXECUTE FUNCTION poison()",
    "CREATE TRIGGER poison_result BEFORE UPDATE ON outbox FOR EACH ROW"
    " WHEN (NEW.action_id LIKE 'half%' AND NEW.result IS NOT NULL) EXECUTE FUNCTION poison()",
    # Which transaction wrote each row (the proof of "one transaction per batch").
    "CREATE TABLE written_by (action_id text, tx bigint)",
    "CREATE FUNCTION note_tx() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " INSERT INTO written_by VALUES (NEW.action_id, txid_current()); RETURN NEW; END $$",
    "CREATE TRIGGER note_tx AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION note_tx()",
]

Sql = Callable[[str], list[tuple[object, ...]]]


@pytest.fixture
async def engine_on(
    database_url: str, sink: HttpRecorder, smtp: SmtpRecorder, tmp_path: Path
) -> AsyncIterator[tuple[Harness, Sql]]:
    """A started engine on either database with the poison triggers installed, and a way to
    query that database from outside (a separate connection, as an operator would)."""
    h = build_harness(
        make_config(sink, smtp.port), tmp_path / "deliveries.db", tmp_path / "out", database_url
    )

    def sql(statement: str) -> list[tuple[object, ...]]:
        if database_url:
            with psycopg.connect(database_url, autocommit=True) as conn:
                cur = conn.execute(statement)
                return list(cur.fetchall()) if cur.description else []
        with sqlite3.connect(tmp_path / "deliveries.db") as conn:
            return list(conn.execute(statement).fetchall())

    for statement in POSTGRES_POISON if database_url else SQLITE_POISON:
        sql(statement)
    await h.engine.start()
    yield h, sql
    await h.engine.stop(timeout_s=5)
    h.log.close()


async def test_a_poison_job_is_rolled_back_alone_and_its_key_deferred(
    engine_on: tuple[Harness, Sql], sink: HttpRecorder
) -> None:
    h, sql = engine_on
    batch = [
        Intake(make_job("b-1", "slack_revops_alerts", account_id="acc-1"), order_key=b"acc-1"),
        Intake(make_job("poison-2", "slack_revops_alerts", account_id="acc-1"), order_key=b"acc-1"),
        Intake(make_job("b-3", "slack_revops_alerts", account_id="acc-1"), order_key=b"acc-1"),
        Intake(make_job("b-4", "slack_cs_alerts", account_id="acc-2"), order_key=b"acc-2"),
        # Refused at intake (unknown destination): stored failed, then its result is written;
        # the result's write fails, so the savepoint must undo the first write too.
        Intake(make_job("half-5", "nowhere", account_id="acc-3"), order_key=b"acc-3"),
        Intake(make_job("b-6", "slack_cs_alerts", account_id="acc-2"), order_key=b"acc-2"),
        Intake(make_job("b-7", "nowhere", account_id="acc-4"), order_key=b"acc-4"),
    ]

    outcomes = await h.engine.enqueue_batch(batch)

    assert outcomes[0] is None and outcomes[3] is None and outcomes[5] is None
    assert outcomes[6] is None
    assert isinstance(outcomes[1], Exception) and "poisoned" in str(outcomes[1])
    assert isinstance(outcomes[2], Deferred)  # same key as the poison, after it: not tried
    assert isinstance(outcomes[4], Exception) and "poisoned" in str(outcomes[4])
    stored = {str(a): str(s) for a, s in sql("SELECT action_id, status FROM outbox")}
    assert set(stored) == {"b-1", "b-4", "b-6", "b-7"}  # nothing of poison-2 or half-5
    assert stored["b-7"] == FAILED
    # The stored jobs are delivered, each once, with its action id as Idempotency-Key.
    await h.wait_results(4)
    keys = sorted(r.header("Idempotency-Key") or "" for r in sink.requests())
    assert keys == ["b-1", "b-4", "b-6"]
    assert h.result("b-7").status == ActionStatus.FAILED
    assert [(job.action_id, code) for job, code, _ in h.dead] == [("b-7", "unknown_destination")]

    # The runtime then handles the failed and deferred records one by one, in order.
    with pytest.raises(Exception, match="poisoned"):
        await h.engine.enqueue(batch[1].job)
    await h.engine.enqueue(batch[2].job)
    await sink.wait_for_async(4)
    assert h.log.status("b-3") in {PENDING, DELIVERED}


async def test_the_batch_is_one_transaction(
    engine_on: tuple[Harness, Sql], database_url: str, tmp_path: Path
) -> None:
    h, sql = engine_on
    jobs = [make_job(f"t-{n}", "slack_cs_alerts", account_id=f"acc-{n % 3}") for n in range(20)]
    statements: list[str] = []
    if not database_url:  # SQLite: every statement the engine's connection runs
        h.log._db.connect().set_trace_callback(statements.append)  # type: ignore[attr-defined]

    outcomes = await h.engine.enqueue_batch(
        [Intake(j, order_key=j.account_id.encode()) for j in jobs]
    )

    assert outcomes == [None] * 20
    if database_url:
        rows = sql("SELECT action_id, tx FROM written_by WHERE action_id LIKE 't-%'")
        assert len(rows) == 20 and len({tx for _, tx in rows}) == 1
    else:
        h.log._db.connect().set_trace_callback(None)  # type: ignore[attr-defined]
        # The batch's own statements come first; the woken lanes' claims follow its COMMIT.
        batch = statements[: statements.index("COMMIT") + 1]
        assert batch[0] == "BEGIN IMMEDIATE" and "BEGIN IMMEDIATE" not in batch[1:]
        inserts = [s for s in batch if "INTO outbox" in s]
        # Set-based: the whole batch in one statement (traced again at each row's trigger).
        assert len(set(inserts)) == 1
        assert set(re.findall(r"\('(t-\d+)'", inserts[0])) == {j.action_id for j in jobs}
    await h.wait_results(20)


async def test_a_redelivered_batch_stores_nothing_twice(
    engine_on: tuple[Harness, Sql], sink: HttpRecorder
) -> None:
    h, sql = engine_on
    batch = [Intake(make_job(f"r-{n}", "slack_cs_alerts"), order_key=b"acc-1") for n in range(5)]
    assert await h.engine.enqueue_batch(batch) == [None] * 5
    await h.wait_results(5)
    assert await h.engine.enqueue_batch(batch) == [None] * 5  # Kafka redelivers the batch
    await asyncio.sleep(0.3)  # room for a (wrong) second delivery to show

    assert sql("SELECT count(*) FROM outbox") == [(5,)]
    assert sorted(r.header("Idempotency-Key") or "" for r in sink.requests()) == [
        f"r-{n}" for n in range(5)
    ]
    assert len(h.results) == 5
