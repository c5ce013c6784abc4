"""The webhook processor's outbox on both engines, as N replicas use it: each job is claimed
by one replica, an account's jobs go out in order, and a dead replica's claim runs out."""

from __future__ import annotations

import time
from pathlib import Path

from services.webhook_processor.delivery_log import DELIVERED, FAILED, Attempt, DeliveryLog
from tests.unit.stores.jobs import slack_job as _job


def _replicas(tmp_path: Path, url: str, count: int = 2) -> list[DeliveryLog]:
    return [DeliveryLog(tmp_path / "deliveries.db", url=url) for _ in range(count)]


def test_replicas_claim_each_job_once_in_account_order(tmp_path: Path, database_url: str) -> None:
    one, two, three = _replicas(tmp_path, database_url, 3)
    for action_id, account in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("a3", "A")]:
        assert one.add_job(_job(action_id, account))
    assert not two.add_job(_job("a1", "A"))  # a redelivered job is stored once

    first = one.next_pending("slack_deals", 1, 0)
    second = two.next_pending("slack_deals", 1, 0)
    assert first is not None and first.action_id == "a1"
    # a1 is held by `one`, and a2 must wait for it: B's job is all `two` may take.
    assert second is not None and second.action_id == "b1"
    assert three.next_pending("slack_deals", 1, 0) is None

    one.finish("a1", DELIVERED, [])
    two.finish("b1", FAILED, [], "HTTP_500", "server error")
    following = two.next_pending("slack_deals", 1, 0)
    assert following is not None and following.action_id == "a2"
    assert one.next_pending("slack_deals", 1, 0) is None  # a3 waits for a2
    assert three.next_pending("slack_deals", 1, 0) is None
    # The owner gets its own claim back (a lane retrying after an error).
    again = two.next_pending("slack_deals", 1, 0)
    assert again is not None and again.action_id == "a2"
    assert two.pending_count("slack_deals") == 2
    assert [r.action_id for r in one.unpublished()] == ["a1", "b1"]


def test_a_dead_replicas_claim_runs_out(tmp_path: Path, database_url: str) -> None:
    one, two = _replicas(tmp_path, database_url)
    assert one.add_job(_job("a1", "A"))
    claimed = one.next_pending("slack_deals", 1, 0)
    assert claimed is not None and two.next_pending("slack_deals", 1, 0) is None
    one.set_attempts("a1", 1)  # an attempt renews the lease...
    assert two.next_pending("slack_deals", 1, 0) is None
    two._write("UPDATE outbox SET claimed_until = ?", (time.time() - 1,))  # ...until it ends
    taken = two.next_pending("slack_deals", 1, 0)
    assert taken is not None and taken.action_id == "a1" and taken.attempts == 1
    assert one.next_pending("slack_deals", 1, 0) is None


def test_lanes_split_accounts_within_a_replica(tmp_path: Path, database_url: str) -> None:
    [log] = _replicas(tmp_path, database_url, 1)
    accounts = [f"ACC-{n}" for n in range(8)]
    for n, account in enumerate(accounts):
        log.add_job(_job(f"j{n}", account))
    seen = []
    for lane in range(2):
        while (row := log.next_pending("slack_deals", 2, lane)) is not None:
            seen.append(row.action_id)
            log.finish(row.action_id, DELIVERED, [])
    assert sorted(seen) == sorted(f"j{n}" for n in range(8))
    assert log.pending_count() == 0


def test_digests_cut_once_and_purge(tmp_path: Path, database_url: str) -> None:
    from datetime import UTC, datetime

    from contracts import DeliveryMode

    one, two = _replicas(tmp_path, database_url)
    daily = _job("d1", "A").model_copy(update={"delivery_mode": DeliveryMode.DAILY_DIGEST})
    assert one.queue_digest(daily) and not two.queue_digest(daily)
    [batch] = one.cut_digests("daily_digest")
    assert two.cut_digests("daily_digest") == []
    assert two.status(batch.digest_id) == "pending"
    one.remember_ticket("a1", "jira", "REV-1")
    one.remember_ticket("a1", "jira", "REV-2")
    assert two.ticket_id("a1") == "REV-2"
    one.record_attempt(batch.digest_id, "email", 1, DELIVERED, 250, 3.5)
    one.finish(batch.digest_id, DELIVERED, [])
    one.mark_published(batch.digest_id)
    counts = two.purge(delivered_before=time.time() + 1, attempts_before=datetime.now(UTC))
    assert counts == {"jobs": 1, "digest_entries": 1, "attempts": 1, "tickets": 1}


def test_a_batch_stored_set_based_answers_each_job_as_if_stored_alone(
    tmp_path: Path, database_url: str
) -> None:
    """`add_jobs` stores the batch in one statement; each `add_job` then says whether its
    job was new: a job stored before and the second copy of a job are not."""
    log, other = _replicas(tmp_path, database_url)
    assert log.add_job(_job("old", "A"))
    batch = [_job("a1", "A"), _job("old", "A"), _job("b1", "B"), _job("a1", "A")]
    outcomes = log.in_one_transaction(
        batch, log.add_job, key_of=lambda job: job.account_id, prepare=log.add_jobs
    )
    assert outcomes == [True, False, True, False]
    assert log.pending_count("slack_deals") == 3
    claimed = [replica.next_pending("slack_deals", 1, 0) for replica in (log, other)]
    # A's new job waits for its older one; B's goes alongside.
    assert [row.action_id for row in claimed if row is not None] == ["old", "b1"]
    log.finish("old", DELIVERED, [])
    following = log.next_pending("slack_deals", 1, 0)
    assert following is not None and following.action_id == "a1"
    assert following.job() == batch[0]


def test_the_final_state_and_its_attempt_are_written_together(
    tmp_path: Path, database_url: str
) -> None:
    log = DeliveryLog(tmp_path / "deliveries.db", url=database_url)
    assert log.add_job(_job("a1", "A"))
    claimed = log.next_pending("slack_deals", 1, 0)
    assert claimed is not None
    log.finish("a1", DELIVERED, [], attempt=Attempt("slack_deals", 1, "success", 200, 12.5))
    assert log.status("a1") == DELIVERED
    [attempt] = log.attempts("a1")
    assert (attempt["attempt"], attempt["status"], attempt["response_code"]) == (1, "success", 200)
    assert attempt["latency_ms"] == 12.5
