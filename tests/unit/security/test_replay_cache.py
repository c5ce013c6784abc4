from __future__ import annotations

from pathlib import Path

import pytest

from services.common.security.replay_cache import (
    InMemoryReplayCache,
    ReplayCache,
    SharedReplayCache,
    Sighting,
)

A = Sighting(issuer="data_agent", jti="m-1", payload_hash="h1", position="t/0/1")


def test_first_sighting_accepted_same_position_benign(cache: ReplayCache) -> None:
    assert cache.check_and_record(A, keep_until=100, now=0)
    assert cache.check_and_record(A, keep_until=100, now=1)


@pytest.mark.parametrize(
    "again",
    [
        Sighting("data_agent", "m-1", "h1", "t/0/2"),  # same record content, new offset
        Sighting("data_agent", "m-1", "h2", "t/0/1"),  # same position, other payload
        Sighting("data_agent", "m-1", "h1", None),  # caller gave no position
    ],
)
def test_jti_reused_elsewhere_is_a_replay(cache: ReplayCache, again: Sighting) -> None:
    assert cache.check_and_record(A, keep_until=100, now=0)
    assert not cache.check_and_record(again, keep_until=100, now=1)


def test_same_jti_from_another_issuer_is_independent(cache: ReplayCache) -> None:
    """The DLQ replay tool re-signs a message id under its own identity."""
    assert cache.check_and_record(A, keep_until=100, now=0)
    assert cache.check_and_record(Sighting("dlq_replay", "m-1", "h1", "t/0/7"), 100, 1)


def test_entries_expire(cache: ReplayCache) -> None:
    assert cache.check_and_record(A, keep_until=10, now=0)
    assert cache.check_and_record(Sighting("data_agent", "m-1", "h1", "t/0/9"), 20, now=11)


def test_memory_cache_is_bounded() -> None:
    cache = InMemoryReplayCache(max_entries=3)
    for i in range(10):
        assert cache.check_and_record(Sighting("i", f"m-{i}", "h", "p"), 100, 0)
    assert len(cache) == 3


def test_sqlite_cache_survives_restart_and_is_shared(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite"
    first = SharedReplayCache(path)
    assert first.check_and_record(A, keep_until=100, now=0)
    first.close()
    restarted, other_process = SharedReplayCache(path), SharedReplayCache(path)
    assert not restarted.check_and_record(Sighting("data_agent", "m-1", "h1", "t/5/5"), 100, 1)
    assert other_process.check_and_record(A, keep_until=100, now=2)  # benign redelivery
    assert restarted.purge(now=1000) == 1
