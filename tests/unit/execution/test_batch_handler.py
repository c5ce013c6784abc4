"""The execution agent's batch handlers (`ExecutionApp.on_decisions`, `on_action_results`):
one transaction per batch, a savepoint per record, on a real SQLite file and a real
PostgreSQL server (`store` runs every test on both engines).

What they must keep of the per-record path: the same rows, a failing record undone alone
(and returned as its exception), the later records of its key not attempted (`Deferred`),
nothing committed when the store is out of reach, idempotent redelivery of a whole batch.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from contracts import ActionJob, AgentName, AnalysisResults, AnalysisType, Envelope
from services.common.errors import PermanentError
from services.common.messages import encode, make_envelope
from services.common.records import (
    BatchOutcome,
    Deferred,
    Outgoing,
    Parsed,
    ProducedMark,
    Record,
)
from services.common.settings import Settings
from services.common.stores.database import Database, StoreUnavailableError
from services.execution_agent import service
from services.execution_agent.app import ExecutionApp
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import ExecutionAgent
from services.execution_agent.store import open_store
from tests.unit.execution.conftest import make_analysis, make_flag, result

TABLES = (
    "revops_ai_insights",
    "revops_ai_insight_audit",
    "revops_ai_executions",
    "revops_ai_health",
    "revops_ai_analysis_history",
    "revops_ai_latest_analysis",
    "revops_ai_notifications",
    "revops_ai_insight_export_outbox",
)
SERIALS = ("audit_id", "rowid", "seq")
ACCOUNTS = ("ACC-1", "ACC-2", "ACC-3")
BATCH = 30  # ten decisions per account, interleaved as Kafka would deliver them
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# Wall-clock stamps (utcnow) differ between two runs; everything else must be equal.
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
_DURATION = re.compile(r'"execution_time_ms":\d+')


@pytest.fixture
def app(store: Database, tmp_path: Path, routing: RoutingRules) -> ExecutionApp:
    return ExecutionApp(Settings(var_dir=tmp_path / "var"), ExecutionAgent(store, routing))


@pytest.fixture
def second_app(
    tmp_path: Path, database_url: str, routing: RoutingRules, request: pytest.FixtureRequest
) -> ExecutionApp:
    """An app on a database of its own (the reference of the per-record path)."""
    url = request.getfixturevalue("postgres").fresh_database() if database_url else ""
    store = open_store(tmp_path / "reference.db", url=url)
    return ExecutionApp(Settings(var_dir=tmp_path / "var2"), ExecutionAgent(store, routing))


def decision(n: int, account: str) -> AnalysisResults:
    """Deal-quality decisions that create, re-run, escalate and clear insights."""
    flags = [make_flag(severity=("medium", "high", "critical")[n % 3])] if n % 4 != 3 else []
    if n % 5 == 0:
        flags.append(make_flag(severity="high", insight_type="stalled_deal"))
    analysis = make_analysis(
        request_id=f"req-{account}-{n}", flags=flags, account_id=account, opportunity_id=account
    )
    return analysis.model_copy(update={"requested_at": T0 + timedelta(minutes=n)})


def batch_of_decisions(size: int = BATCH) -> list[tuple[Parsed, Record]]:
    items = []
    for offset in range(size):
        account = ACCOUNTS[offset % len(ACCOUNTS)]
        analysis = decision(offset // len(ACCOUNTS), account)
        item = _parsed(analysis, analysis.request_id, AgentName.DECISION_AGENT, "decision")
        items.append((item, _record("revops.decisions", offset, account)))
    return items


def batch_of_results(outcomes: Sequence[BatchOutcome]) -> list[tuple[Parsed, Record]]:
    """A delivery result for every job the decisions produced, in their order."""
    jobs = [
        ActionJob.model_validate(envelope_of(out).payload)
        for outputs in outcomes
        if isinstance(outputs, list)
        for out in outputs
        if out.topic == Settings().topics.actions
    ]
    items = []
    for offset, job in enumerate(jobs):
        outcome = result(job, status="failed" if offset % 7 == 3 else "success")
        stage = f"result:{job.action_id}"
        item = _parsed(outcome, job.request_id, AgentName.WEBHOOK_PROCESSOR, stage)
        items.append((item, _record("revops.action-results", offset, job.account_id)))
    return items


def envelope_of(out: Outgoing) -> Envelope:
    """The output's envelope as the next stage reads it (from its bytes)."""
    return Envelope.model_validate_json(encode(out.message))


def action_ids(outputs: BatchOutcome) -> list[str]:
    """The jobs a record publishes, in order."""
    assert isinstance(outputs, list)
    topic = Settings().topics.actions
    return [envelope_of(out).payload["action_id"] for out in outputs if out.topic == topic]


def flow_ids(outputs: BatchOutcome) -> list[str]:
    """The flow outputs a record publishes (their request ids)."""
    assert isinstance(outputs, list)
    topic = Settings().topics.flow_results
    return [envelope_of(out).metadata.request_id for out in outputs if out.topic == topic]


def _parsed(body: BaseModel, request_id: str, source: AgentName, stage: str) -> Parsed:
    """What the runtime's envelope parser makes of the record `source` sent."""
    envelope = make_envelope(
        body,
        request_id=request_id,
        flow_id=f"flow-{request_id}",
        correlation_id=f"corr-{request_id}",
        source=source.value,
        target=AgentName.EXECUTION_AGENT.value,
        stage=stage,
    )
    return Parsed(envelope.metadata.idempotency_key, body, envelope=envelope)


def _record(topic: str, offset: int, key: str) -> Record:
    return Record(topic, 0, offset, key.encode(), None)


_runner: asyncio.Runner | None = None
_T = TypeVar("_T")


@pytest.fixture(autouse=True)
def _one_event_loop() -> Iterator[None]:
    """One loop per test, whose executor thread makes every store call, as in a service
    (a loop per call would keep a PostgreSQL connection per dead thread, and drain the pool)."""
    global _runner
    with asyncio.Runner() as runner:
        _runner = runner
        yield
        _runner = None


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    assert _runner is not None
    return _runner.run(coroutine)


def per_record(app: ExecutionApp, items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
    handle = app.on_decision if items[0][1].topic == "revops.decisions" else app.on_action_result
    return [run(handle(item, record)) for item, record in items]


def in_batch(app: ExecutionApp, items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
    handle = app.on_decisions if items[0][1].topic == "revops.decisions" else app.on_action_results
    outcomes = run(handle(items))
    assert len(outcomes) == len(items)
    return outcomes


def rows(store: Database, times: bool = False) -> dict[str, list[tuple[str, ...]]]:
    """Every row of the agent's tables, as text; wall-clock stamps masked unless `times`.
    Without serial ids, which follow the order of insertion across keys (and, in
    PostgreSQL, skip the values a rolled-back insert took)."""
    snapshot = {}
    with store.reader() as conn:
        for table in TABLES:
            found = [
                tuple(str(row[k]) for k in row.keys() if k not in SERIALS)  # noqa: SIM118
                for row in conn.execute(f"SELECT * FROM {table}")
            ]
            if not times:
                found = [tuple(_TIME.sub("<t>", v) for v in row) for row in found]
            snapshot[table] = sorted(found)
    return snapshot


def published(outcomes: Sequence[BatchOutcome]) -> list[list[tuple[str, str | None, str]]]:
    """What each record would publish: topic, key and payload (times masked)."""

    def one(out: Outgoing) -> tuple[str, str | None, str]:
        payload = out.message.model_dump_json(include={"payload"})
        return out.topic, out.key, _DURATION.sub("<ms>", _TIME.sub("<t>", payload))

    return [
        [one(out) for out in outcome] if isinstance(outcome, list) else [("", None, repr(outcome))]
        for outcome in outcomes
    ]


def requests_in(store: Database, table: str) -> set[str]:
    with store.reader() as conn:
        return {row[0] for row in conn.execute(f"SELECT request_id FROM {table}")}


# -- the same rows as the per-record path ---------------------------------------------------


def test_a_batch_leaves_exactly_the_rows_of_per_record_handling(
    app: ExecutionApp, second_app: ExecutionApp
) -> None:
    decisions = batch_of_decisions()
    batched = in_batch(app, decisions)
    reference = per_record(second_app, decisions)
    assert published(batched) == published(reference)
    assert sum(len(outputs) for outputs in published(batched)) > BATCH  # jobs were planned

    results = batch_of_results(batched)
    assert published(in_batch(app, results)) == published(per_record(second_app, results))
    assert rows(app.agent.store) == rows(second_app.agent.store)
    assert rows(app.agent.store)["revops_ai_insight_audit"]  # not vacuously equal


def test_flow_output_callbacks_still_mark_the_flow_published(app: ExecutionApp) -> None:
    decided = in_batch(app, batch_of_decisions())
    outcomes = [*decided, *in_batch(app, batch_of_results(decided))]
    flows = [
        out
        for outputs in outcomes
        if isinstance(outputs, list)
        for out in outputs
        if out.topic == Settings().topics.flow_results
    ]
    assert len(flows) > BATCH // 2  # complete once their results came back (some compensate)
    marks = [m for out in flows if isinstance(m := out.on_produced, ProducedMark)]
    assert len(marks) == len(flows)
    assert len({m.mark for m in marks}) == 1  # the runtime calls it once per flush
    marks[0].mark([m.item for m in marks])
    for out in flows:
        request_id = envelope_of(out).metadata.request_id
        assert app.agent.executions.get(request_id).state.flow_published_at is not None


# -- a failing record ------------------------------------------------------------------------


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Request ids whose decision fails half-way: after its insights were written, before
    its history and execution (so a rollback of its savepoint has something to undo)."""
    poisoned: set[str] = set()

    def fail(_agent: ExecutionAgent, analysis: AnalysisResults, _at: datetime | None) -> None:
        if analysis.request_id in poisoned:
            raise ValueError(f"poison {analysis.request_id}")

    monkeypatch.setitem(service.POST_ANALYSIS_HOOKS, AnalysisType.DEAL_QUALITY, (fail,))
    yield poisoned


@pytest.mark.parametrize("position", [0, BATCH // 2, BATCH - 1], ids=["first", "middle", "last"])
def test_a_poison_record_is_undone_alone_and_later_records_of_its_key_are_deferred(
    app: ExecutionApp, second_app: ExecutionApp, poison: set[str], position: int
) -> None:
    decisions = batch_of_decisions()
    bad, bad_record = decisions[position]
    poison.add(bad.body.request_id)

    outcomes = in_batch(app, decisions)

    assert isinstance(outcomes[position], ValueError)
    same_key = [i for i, (_, r) in enumerate(decisions) if r.key == bad_record.key]
    deferred = [i for i in same_key if i > position]
    for i, outcome in enumerate(outcomes):
        if i in deferred:
            assert isinstance(outcome, Deferred), i
        elif i != position:
            assert isinstance(outcome, list), (i, outcome)
    store = app.agent.store
    for table in ("revops_ai_insights", "revops_ai_executions", "revops_ai_analysis_history"):
        # the poison's insights were written before it failed: its savepoint undid them
        assert bad.body.request_id not in requests_in(store, table)
    handled = {d.body.request_id for d, _ in decisions} - {bad.body.request_id}
    handled -= {decisions[i][0].body.request_id for i in deferred}
    assert requests_in(store, "revops_ai_executions") == handled

    # The runtime then handles the deferred records one by one, after the poison (which
    # fails again there and goes to the DLQ): the same rows as the per-record path.
    for i in deferred:
        run(app.on_decision(*decisions[i]))
    for item, record in decisions:
        if item is not bad:
            run(second_app.on_decision(item, record))
    assert rows(store) == rows(second_app.agent.store)


def test_an_unknown_action_result_fails_alone(app: ExecutionApp) -> None:
    decided = in_batch(app, batch_of_decisions())
    results = batch_of_results(decided)
    item, record = results[1]
    unknown = item.body.model_copy(update={"action_id": "never-planned"})
    results.insert(2, (Parsed("unknown", unknown, envelope=item.envelope), record))

    outcomes = in_batch(app, results)

    assert isinstance(outcomes[2], PermanentError) and outcomes[2].code == "UNKNOWN_ACTION"
    assert all(isinstance(o, list) for o in outcomes[:2])
    later_same_key = [i for i in range(3, len(results)) if results[i][1].key == record.key]
    assert later_same_key
    assert all(isinstance(outcomes[i], Deferred) for i in later_same_key)
    other = [i for i in range(3, len(results)) if i not in later_same_key]
    assert all(isinstance(outcomes[i], list) for i in other)


def test_a_store_outage_fails_the_whole_call_and_commits_nothing(
    app: ExecutionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    decisions = batch_of_decisions()
    before = rows(app.agent.store, times=True)
    outage_at = decisions[BATCH // 2][0].body.request_id

    def store_gone(_agent: ExecutionAgent, analysis: AnalysisResults, _at: object) -> None:
        if analysis.request_id == outage_at:
            raise StoreUnavailableError("database unavailable: connection lost")

    monkeypatch.setitem(service.POST_ANALYSIS_HOOKS, AnalysisType.DEAL_QUALITY, (store_gone,))
    with pytest.raises(StoreUnavailableError):
        run(app.on_decisions(decisions))
    assert rows(app.agent.store, times=True) == before


# -- redelivery ------------------------------------------------------------------------------


def test_a_redelivered_batch_finds_the_same_rows_and_publishes_the_same(
    app: ExecutionApp,
) -> None:
    decisions = batch_of_decisions()
    first = in_batch(app, decisions)
    results = batch_of_results(first)
    first_results = in_batch(app, results[: len(results) // 2])
    after_first = rows(app.agent.store, times=True)

    # A crash before the offsets were committed: both batches come again.
    again = in_batch(app, decisions)
    again_results = in_batch(app, results[: len(results) // 2])

    assert rows(app.agent.store, times=True) == after_first
    # Nothing new goes out: jobs still without a result again (downstream dedups on
    # action_id), the completed flows' outputs (not marked published yet) again.
    answered = {item.body.action_id for item, _ in results[: len(results) // 2]}
    sent = {a for outputs in [*first, *first_results] for a in action_ids(outputs)}
    for before, now in zip(first, again, strict=True):
        unanswered = [a for a in action_ids(before) if a not in answered]
        assert action_ids(now)[: len(unanswered)] == unanswered  # then any compensations
        assert set(action_ids(now)) <= sent - answered
    for outputs in again_results:
        assert set(action_ids(outputs)) <= sent - answered
    completed = {f for outputs in first_results for f in flow_ids(outputs)}
    assert completed
    assert {f for outputs in again_results for f in flow_ids(outputs)} == completed
