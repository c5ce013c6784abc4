"""Four processes share one store (3 replicas' worth of work and one more), on each engine:
they race upserts of the same insight, appends to the same insight, lifecycle transitions and
outbox claims. No duplicate active insight, no lost update or transition, no job delivered
twice, and each account's jobs delivered in the order they were stored."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from pathlib import Path
from typing import Any

from contracts import ActionJob, Subject
from services.execution_agent.insights import IllegalTransitionError, InsightRepository
from services.execution_agent.store import open_store
from services.webhook_processor.delivery_log import DELIVERED, Attempt, DeliveryLog, Finish
from tests.unit.execution.conftest import make_flag
from tests.unit.stores.jobs import slack_job

WORKERS = 4
ROUNDS = 12
TRANSITION_SUBJECTS = 6
ACCOUNTS = 5
JOBS_PER_ACCOUNT = 8
SHARED = Subject(account_id="ACC-SHARED", opportunity_id="OPP-SHARED")


def _job(account: str, n: int) -> ActionJob:
    return slack_job(f"{account}-job-{n:02d}", account, request_id=f"req-{account}-{n}")


def _worker(
    worker: int, state: str, url: str, barrier: Any, appended_to: str, to_move: list[str]
) -> None:
    insights = InsightRepository(open_store(Path(state) / "revops.db", url=url))
    outbox = DeliveryLog(Path(state) / "deliveries.db", url=url)
    barrier.wait()
    for n in range(ROUNDS):
        # The same subject and type from every process: one insight, re-run again and again.
        insights.upsert(SHARED, make_flag(), f"req-{worker}-{n}")
        # Appends to one insight: a lost update would drop some of them.
        insights.record_action_taken(
            appended_to, {"action_id": f"w{worker}-{n}", "channel": "slack", "status": "success"}
        )
    for insight_id in to_move:  # every process tries every step; each succeeds once
        for action in ("ack", "start", "resolve"):
            with contextlib.suppress(IllegalTransitionError):
                insights.transition(insight_id, action, f"worker-{worker}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # Half the workers claim one job at a time, half several (as the engine's lanes do,
        # writing their final states and attempts together).
        rows = outbox.next_pending_many("slack_deals", 1, 0, 1 if worker % 2 else 5)
        if not rows:
            if outbox.pending_count("slack_deals") == 0:
                return
            time.sleep(0.01)
            continue
        attempt = Attempt("slack_deals", worker, DELIVERED, 200)
        outbox.finish_many([Finish(row.action_id, DELIVERED, [], attempt=attempt) for row in rows])
    raise TimeoutError("jobs still pending")


def test_four_processes_share_one_store(tmp_path: Path, database_url: str) -> None:
    insights = InsightRepository(open_store(tmp_path / "revops.db", url=database_url))
    outbox = DeliveryLog(tmp_path / "deliveries.db", url=database_url)
    appended_to = insights.upsert(Subject(account_id="ACC-APPEND"), make_flag(), "req-a").insight
    to_move = [
        insights.upsert(Subject(account_id=f"ACC-T{n}"), make_flag(), f"req-t{n}").insight
        for n in range(TRANSITION_SUBJECTS)
    ]
    accounts = [f"ACC-{n}" for n in range(ACCOUNTS)]
    for n in range(JOBS_PER_ACCOUNT):  # interleaved accounts, as Kafka would hand them over
        for account in accounts:
            assert outbox.add_job(_job(account, n))

    ctx = multiprocessing.get_context("spawn")  # no inherited connections or pool threads
    barrier = ctx.Barrier(WORKERS)
    ids = [i.insight_id for i in to_move]
    procs = [
        ctx.Process(
            target=_worker,
            args=(w, str(tmp_path), database_url, barrier, appended_to.insight_id, ids),
        )
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    # One active insight for the shared subject, carrying every upsert as one version.
    shared = insights.list(account_id=SHARED.account_id)
    assert len(shared) == 1
    assert shared[0].version == WORKERS * ROUNDS
    assert [a.version for a in insights.audit(shared[0].insight_id)] == list(
        range(1, WORKERS * ROUNDS + 1)
    )
    # Every append kept.
    taken = insights.get(appended_to.insight_id).actions_taken
    assert sorted(a["action_id"] for a in taken) == sorted(
        f"w{w}-{n}" for w in range(WORKERS) for n in range(ROUNDS)
    )
    # Each transition happened exactly once, in order.
    for insight_id in ids:
        assert insights.get(insight_id).status == "resolved"
        steps = [a.action for a in insights.audit(insight_id)]
        assert steps == ["create", "ack", "start", "resolve"]
    # Each job delivered once; an account's jobs in the order they were stored.
    attempts = outbox.attempts()
    delivered = [a["action_id"] for a in attempts]
    assert sorted(delivered) == sorted(
        _job(a, n).action_id for a in accounts for n in range(JOBS_PER_ACCOUNT)
    )
    for account in accounts:
        mine = [a for a in delivered if a.startswith(f"{account}-")]
        assert mine == sorted(mine)
