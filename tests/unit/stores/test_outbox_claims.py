"""The webhook processor's outbox on both engines, as N replicas use it: each job is claimed
by one replica, an account's jobs go out in order, and a dead replica's claim runs out."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from contracts import ActionResult, ActionStatus
from services.webhook_processor.delivery_log import (
    DELIVERED,
    FAILED,
    Attempt,
    DeliveryLog,
    Finish,
)
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


def test_a_multi_claim_takes_each_accounts_jobs_in_order(tmp_path: Path, database_url: str) -> None:
    one, two = _replicas(tmp_path, database_url)
    for action_id, account in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("c1", "C"), ("b2", "B")]:
        assert one.add_job(_job(action_id, account))
    held = two.next_pending("slack_deals", 1, 0)
    assert held is not None and held.action_id == "a1"
    # A's jobs wait behind the one `two` holds; B's and C's come oldest first.
    claimed = one.next_pending_many("slack_deals", 1, 0, 10)
    assert [row.action_id for row in claimed] == ["b1", "c1", "b2"]
    # `two` gets its own claim back, with A's later job behind it, and nothing else.
    assert [r.action_id for r in two.next_pending_many("slack_deals", 1, 0, 10)] == ["a1", "a2"]
    # The limit cuts the oldest-first list: an account's later job never without its older.
    two.finish("a1", DELIVERED, [])
    assert [r.action_id for r in two.next_pending_many("slack_deals", 1, 0, 1)] == ["a2"]
    assert one.next_pending_many("slack_deals", 1, 0, 10) == claimed  # still one's
    assert two.next_pending_many("slack_deals", 1, 0, 10)[0].action_id == "a2"


def test_a_multi_claim_leaves_held_jobs_until_their_lease_runs_out(
    tmp_path: Path, database_url: str
) -> None:
    one, two = _replicas(tmp_path, database_url)
    for action_id, account in [("a1", "A"), ("a2", "A"), ("b1", "B")]:
        assert one.add_job(_job(action_id, account))
    assert [r.action_id for r in one.next_pending_many("slack_deals", 1, 0, 10)] == [
        "a1",
        "a2",
        "b1",
    ]
    assert two.next_pending_many("slack_deals", 1, 0, 10) == []
    one.release(["b1"])  # a stopping lane hands back what it did not deliver
    assert [r.action_id for r in two.next_pending_many("slack_deals", 1, 0, 10)] == ["b1"]
    two._write("UPDATE outbox SET claimed_until = ? WHERE action_id != ?", (time.time() - 1, "b1"))
    taken = two.next_pending_many("slack_deals", 1, 0, 10)
    assert [r.action_id for r in taken] == ["a1", "a2", "b1"]  # a dead replica's, and its own
    assert one.next_pending_many("slack_deals", 1, 0, 10) == []


def test_concurrent_multi_claims_never_share_a_job(tmp_path: Path, database_url: str) -> None:
    claimers = _replicas(tmp_path, database_url, 2)
    accounts = [f"ACC-{n}" for n in range(6)]
    for n in range(5):
        for account in accounts:
            claimers[0].add_job(_job(f"{account}-{n}", account))
    start = threading.Barrier(len(claimers))
    taken: list[list[str]] = [[] for _ in claimers]

    def claim(index: int) -> None:
        log = claimers[index]
        start.wait()
        while log.pending_count("slack_deals"):
            rows = log.next_pending_many("slack_deals", 1, 0, 4)
            taken[index].extend(row.action_id for row in rows)
            log.finish_many([Finish(row.action_id, DELIVERED, []) for row in rows])

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(claimers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    everything = [*taken[0], *taken[1]]
    assert sorted(everything) == sorted(f"{a}-{n}" for a in accounts for n in range(5))
    for mine in taken:  # each claimer delivered an account's jobs in their order
        for account in accounts:
            of_account = [i for i in mine if i.startswith(f"{account}-")]
            assert of_account == sorted(of_account)


def test_finish_many_writes_what_finishes_one_by_one_write(
    tmp_path: Path, database_url: str
) -> None:
    log = DeliveryLog(tmp_path / "deliveries.db", url=database_url)

    def finals(prefix: str) -> list[Finish]:
        """A success with its attempt, a failure with its attempt, a failure without."""
        ids = [f"{prefix}{n}" for n in range(3)]
        for action_id in ids:
            assert log.add_job(_job(action_id, prefix))
        success = ActionResult.of_job(
            _job(ids[0], prefix), "#deals", ActionStatus.SUCCESS, response={"ok": True}
        )
        failure = ActionResult.of_job(
            _job(ids[1], prefix), "#deals", ActionStatus.FAILED, error="HTTP_400: bad request"
        )
        return [
            Finish(ids[0], DELIVERED, [success], attempt=Attempt("slack_deals", 1, "success", 200)),
            Finish(
                ids[1],
                FAILED,
                [failure],
                "HTTP_400",
                "bad request",
                Attempt("slack_deals", 2, "permanent_failure", 400, 4.5, "HTTP_400: bad request"),
            ),
            Finish(ids[2], FAILED, [], "max_pending_age_exceeded", "too old"),
        ]

    def written(finishes: list[Finish]) -> list[tuple[object, ...]]:
        """Each job's final state and attempts, without what names the job."""
        rows = {row.action_id: row for row in log.unpublished()}
        written: list[tuple[object, ...]] = []
        for f in finishes:
            row = rows[f.action_id]
            results = [(r.action_id == f.action_id, r.status, r.error) for r in row.results()]
            attempts = [
                tuple(v for k, v in a.items() if k not in ("action_id", "at"))
                for a in log.attempts(f.action_id)
            ]
            written.append((row.status, row.error_code, row.error, results, attempts))
        return written

    one_by_one, together = finals("A"), finals("B")
    assert len(log.next_pending_many("slack_deals", 1, 0, 10)) == 6
    for f in one_by_one:
        log.finish(f.action_id, f.status, f.results, f.error_code, f.error, f.attempt)
    log.finish_many(together)

    assert (
        written(together)
        == written(one_by_one)
        == [
            (
                DELIVERED,
                None,
                None,
                [(True, ActionStatus.SUCCESS, None)],
                [("slack_deals", 1, "success", 200, None, None)],
            ),
            (
                FAILED,
                "HTTP_400",
                "bad request",
                [(True, ActionStatus.FAILED, "HTTP_400: bad request")],
                [("slack_deals", 2, "permanent_failure", 400, 4.5, "HTTP_400: bad request")],
            ),
            (FAILED, "max_pending_age_exceeded", "too old", [], []),
        ]
    )
    assert log.pending_count() == 0
    # Their claims are cleared with them: a DLQ replay makes a failed job claimable at once.
    assert log.reopen_failed("B2")
    other = DeliveryLog(tmp_path / "deliveries.db", url=database_url)
    [again] = other.next_pending_many("slack_deals", 1, 0, 10)
    assert again.action_id == "B2"
