"""Idempotency keys, the replay cache and the ingress index on both engines: what one
replica recorded, another (a second store object on the same database) sees."""

from __future__ import annotations

import time
from pathlib import Path

from services.common.dlq import Rejection
from services.common.idempotency import IdempotencyStore
from services.common.security.replay_cache import SharedReplayCache, Sighting
from services.ingress.index import FlowIndex
from tests.support.flow_outputs import flow_output


def test_idempotency_keys_are_shared_by_replicas(tmp_path: Path, database_url: str) -> None:
    one = IdempotencyStore(tmp_path / "keys.db", url=database_url)
    two = IdempotencyStore(tmp_path / "keys.db", url=database_url)
    keys = [f"k-{n}" for n in range(1200)]  # more than one IN (...) chunk
    one.mark_processed("group", keys[:700])
    one.mark_processed("group", keys[:10])  # again: no error, no duplicate
    assert two.already_processed("group", keys) == set(keys[:700])
    assert two.already_processed("other-group", keys) == set()
    assert two.processed_at("group", "k-1") is not None
    assert two.processed_at("group", "k-999") is None
    assert two.purge_older_than(3600) == 0
    assert two.purge_older_than(-1) == 700
    assert one.already_processed("group", keys) == set()


def _sighting(jti: str, position: str | None = "t:0:1", payload: str = "h1") -> Sighting:
    return Sighting(issuer="data_agent", jti=jti, payload_hash=payload, position=position)


def test_a_token_replayed_to_another_replica_is_refused(tmp_path: Path, database_url: str) -> None:
    one = SharedReplayCache(tmp_path / "replay.db", url=database_url)
    two = SharedReplayCache(tmp_path / "replay.db", url=database_url)
    now = time.time()
    assert one.check_and_record(_sighting("a"), now + 60, now)
    # The same record read again (redelivery) is benign; another position is a replay.
    assert two.check_and_record(_sighting("a"), now + 60, now)
    assert not two.check_and_record(_sighting("a", position="t:0:9"), now + 60, now)
    batch = [_sighting(f"b-{n}", position=f"t:0:{n}") for n in range(700)]
    assert all(two.check_and_record_many(batch, now + 60, now))
    assert one.check_and_record_many([batch[5], _sighting("b-5", "x:1:1")], now + 60, now) == [
        True,
        False,
    ]
    # Expired entries are forgotten and purged.
    assert one.check_and_record(_sighting("a", position="t:0:9"), now + 60, now + 61)
    assert two.purge(now + 120) == 701


def test_a_status_call_answers_on_any_ingress_replica(tmp_path: Path, database_url: str) -> None:
    one = FlowIndex(tmp_path / "ingress.db", url=database_url)
    two = FlowIndex(tmp_path / "ingress.db", url=database_url)
    one.accept("req-1")
    one.accept("req-1")
    assert two.is_accepted("req-1") and not two.is_accepted("req-2")
    flow = flow_output("req-1")
    rejection = Rejection("req-3", "SCHEMA", "bad field", "revops.dlq:0:4")
    two.record("revops.flow-results", [flow], {0: 11, 1: 4}, [rejection])
    one.record("revops.flow-results", [flow], {0: 12})  # the first flow output wins
    found = one.flow("req-1")
    assert found is not None and found.summary == "done"
    assert one.rejection("req-3") == rejection
    assert two.positions("revops.flow-results") == {0: 12, 1: 4}
