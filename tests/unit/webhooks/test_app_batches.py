"""The webhook processor's batch handler and batched result publishes, as the runtime calls
them: `on_jobs` answers per record ([] stored, or the error that rolled it back, or Deferred
for later records of the failed record's key); `publish_results` is one publish call."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from contracts.actions import ActionStatus
from contracts.envelope import AnyEnvelope
from services.common.records import BatchHandler, Deferred, Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.webhook_processor.app import NAME, WebhookApp
from services.webhook_processor.config_file import DEMO_CONFIG, load_config
from services.webhook_processor.engine import DeliveryEngine

from .conftest import make_job


def app_on(tmp_path: Path) -> tuple[WebhookApp, list[list[Outgoing]]]:
    settings = Settings(var_dir=tmp_path)
    runtime = ServiceRuntime(NAME, settings)
    app = WebhookApp(settings, runtime, load_config(DEMO_CONFIG, env={}))
    calls: list[list[Outgoing]] = []

    async def publish(outgoing: Sequence[Outgoing]) -> None:
        calls.append(list(outgoing))

    runtime.publish = publish  # type: ignore[method-assign,assignment]
    return app, calls


def consumed(action_id: str, account: str, offset: int) -> tuple[Parsed, Record]:
    job = make_job(action_id, "slack_revops_alerts", account_id=account)
    record = Record("revops.actions", 0, offset, account.encode(), b"{}")
    return Parsed(f"key:{action_id}", job), record


async def test_on_jobs_answers_per_record(tmp_path: Path) -> None:
    app, _calls = app_on(tmp_path)
    handler: BatchHandler = app.on_jobs  # what the runtime's `handle_batch=` takes (mypy)
    engine: DeliveryEngine = app.engine
    with sqlite3.connect(engine.log.path) as conn:  # the database refuses one row
        conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON outbox WHEN NEW.action_id = 'bad'"
            " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        )
    items = [
        consumed("ok-1", "acc-1", 10),
        consumed("bad", "acc-1", 11),
        consumed("later", "acc-1", 12),
        consumed("ok-2", "acc-2", 13),
    ]

    outcomes = await handler(items)

    assert outcomes[0] == [] and outcomes[3] == []
    assert isinstance(outcomes[1], Exception) and "poisoned row" in str(outcomes[1])
    assert isinstance(outcomes[2], Deferred)
    assert [engine.log.status(a) for a in ("ok-1", "bad", "later", "ok-2")] == [
        "pending",
        None,
        None,
        "pending",
    ]
    engine.log.close()


async def test_results_leave_in_one_publish_call(tmp_path: Path) -> None:
    app, calls = app_on(tmp_path)
    jobs = [make_job(f"r-{n}", "slack_revops_alerts") for n in range(3)]
    results = [app.engine._result(j, ActionStatus.SUCCESS, 1) for j in jobs]

    await app.publish_results(results)

    [call] = calls
    assert [out.key for out in call] == ["r-0", "r-1", "r-2"]  # spread by action id
    assert {out.topic for out in call} == {app.settings.topics.action_results}
    assert {out.audience for out in call} == {"execution_agent"}
    envelopes = [out.message for out in call]
    assert all(isinstance(e, AnyEnvelope) for e in envelopes)
    stages = [e.metadata.idempotency_key for e in envelopes]  # type: ignore[attr-defined]
    assert len(set(stages)) == 3  # one idempotency key per result
    app.engine.log.close()
