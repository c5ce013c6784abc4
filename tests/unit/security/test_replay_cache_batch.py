"""`check_and_record_many` answers exactly as `check_and_record` called once per sighting."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from services.common.security.replay_cache import (
    BatchReplayCache,
    InMemoryReplayCache,
    SharedReplayCache,
    Sighting,
)

sightings = st.builds(
    Sighting,
    issuer=st.sampled_from(["data_agent", "dlq_replay"]),
    jti=st.sampled_from([f"b/{i}" for i in range(6)]),
    payload_hash=st.sampled_from(["h1", "h2"]),
    position=st.sampled_from(["t/0/1", "t/0/2", None]),
)
# (sightings of one call, the clock of that call): expiry (keep_until = now + 5) included
calls = st.lists(st.tuples(st.lists(sightings, max_size=8), st.integers(0, 12)), max_size=5)


def _both(directory: Path) -> list[tuple[BatchReplayCache, BatchReplayCache]]:
    return [
        (InMemoryReplayCache(), InMemoryReplayCache()),
        (SharedReplayCache(directory / "a.db"), SharedReplayCache(directory / "b.db")),
    ]


@given(calls=calls)
def test_batch_answers_equal_one_by_one_answers(calls) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for batched, one_by_one in _both(Path(tmp)):
            now = 0
            for batch, step in calls:
                now += step
                expected = [one_by_one.check_and_record(s, now + 5, now) for s in batch]
                assert batched.check_and_record_many(batch, now + 5, now) == expected


def test_a_batch_larger_than_one_look_up_query(cache: BatchReplayCache) -> None:
    first = [Sighting("data_agent", f"b/{i}", "h", f"t/0/{i}") for i in range(2000)]
    assert cache.check_and_record_many(first[::7], 100, 0) == [True] * len(first[::7])
    moved = [Sighting(s.issuer, s.jti, s.payload_hash, f"t/1/{i}") for i, s in enumerate(first)]
    answers = cache.check_and_record_many(moved, 100, 1)
    assert [i for i, ok in enumerate(answers) if not ok] == list(range(0, 2000, 7))


def test_an_empty_batch_changes_nothing(cache: BatchReplayCache) -> None:
    assert cache.check_and_record_many([], 100, 0) == []


def test_a_sqlite_batch_is_durable_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite"
    writer, reader = SharedReplayCache(path), SharedReplayCache(path)
    batch = [Sighting("data_agent", f"b/{i}", "h", f"t/0/{i}") for i in range(5)]
    assert writer.check_and_record_many(batch, 100, 0) == [True] * 5
    writer.close()
    replayed = [Sighting(s.issuer, s.jti, s.payload_hash, "t/9/9") for s in batch]
    assert reader.check_and_record_many(replayed, 100, 1) == [False] * 5
    assert SharedReplayCache(path).check_and_record_many(batch, 100, 2) == [True] * 5  # benign
