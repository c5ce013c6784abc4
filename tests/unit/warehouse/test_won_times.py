"""Won-time statistics kept a while (services/data_agent/won_times.py).

Datasets built with the statistics kept are those built reading them every time, one
subject at a time and in batches, on the warehouse's day and an earlier one; kept figures
are not read again until they expire, and a new day reads its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from functools import partial

import pytest

from services.data_agent.datasets import DatasetRepository
from services.data_agent.won_times import StageRows, WonTimes

from .conftest import AS_OF, Demo
from .test_set_based_datasets import CountingWarehouse, per_subject, subjects

WON_TIME_QUERIES = ("won_time_in_stage", "won_time_by_stage", "won_time_by_segment")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def won_time_queries(warehouse: CountingWarehouse) -> int:
    return sum(warehouse.queries[name] for name in WON_TIME_QUERIES)


@pytest.mark.parametrize("day", [AS_OF, AS_OF - timedelta(days=45)], ids=["as-of", "earlier"])
def test_kept_statistics_give_the_datasets_read_every_time(demo: Demo, day: date) -> None:
    deals, accounts = subjects(demo)
    won_times = WonTimes(300, Clock())
    with CountingWarehouse(demo.path) as warehouse:
        plain = DatasetRepository(warehouse)
        expected = per_subject(plain, deals, accounts, day)
        kept = DatasetRepository(warehouse, won_times=won_times)

        warehouse.queries.clear()
        one_by_one = per_subject(kept, deals, accounts, day)
        read_one_by_one = won_time_queries(warehouse)
        stages_one_by_one = won_times.stages_read
        in_a_batch = per_subject(
            kept.reading_ahead(deals=deals, accounts=accounts, as_of=day), deals, accounts, day
        )
        read_in_batch = won_time_queries(warehouse) - read_one_by_one
        stages_in_batch = won_times.stages_read - stages_one_by_one
        again = per_subject(
            kept.reading_ahead(deals=deals, accounts=accounts, as_of=day), deals, accounts, day
        )
        read_again = won_time_queries(warehouse) - read_one_by_one - read_in_batch

    assert one_by_one == expected
    assert in_a_batch == expected
    assert again == expected
    # Not vacuous: deals were scored against won deals' times in their stages.
    assert sum(1 for o in expected if o[0] != "error" and o[0].get("opportunity")) > 10
    assert stages_one_by_one >= 2
    # Each stage read once (two set-based queries for it), then answered from what was kept;
    # the batch reads only the stages no single deal asked for (its closed deals' stages),
    # together, and a second batch reads none.
    assert read_one_by_one == 2 * stages_one_by_one
    assert read_in_batch == (2 if stages_in_batch else 0)
    assert read_again == 0


def test_kept_statistics_expire_and_a_new_day_reads_its_own(demo: Demo) -> None:
    deals, accounts = subjects(demo)
    deals = deals[:12]
    clock = Clock()
    won_times = WonTimes(300, clock)
    with CountingWarehouse(demo.path) as warehouse:
        repository = DatasetRepository(warehouse, won_times=won_times)
        read = partial(repository.reading_ahead, deals=deals, accounts=accounts[:3])

        read(as_of=AS_OF)
        first = won_time_queries(warehouse)
        clock.now += 299
        read(as_of=AS_OF)
        assert won_time_queries(warehouse) == first  # still fresh
        read(as_of=AS_OF - timedelta(days=1))
        assert won_time_queries(warehouse) == 2 * first  # another day: its own figures
        clock.now += 1
        read(as_of=AS_OF)
        assert won_time_queries(warehouse) == 3 * first  # expired: read again
    assert first == 2


def test_only_missing_stages_are_read_together() -> None:
    clock = Clock()
    asked: list[list[str]] = []

    def read(stages: Sequence[str]) -> dict[str, StageRows]:
        asked.append(list(stages))
        return {s: ([{"stage": s, "won_deals": len(asked)}], []) for s in stages}

    won_times = WonTimes(60, clock)
    day = date(2025, 6, 30)
    assert won_times.rows(day, ["a"], read)["a"][0][0]["won_deals"] == 1
    got = won_times.rows(day, ["a", "b", "c"], read)
    assert asked == [["a"], ["b", "c"]]
    assert [got[s][0][0]["won_deals"] for s in "abc"] == [1, 2, 2]
    clock.now += 60
    won_times.rows(day, ["c"], read)
    assert asked[-1] == ["c"]
    assert won_times.stages_read == 4


def test_a_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        WonTimes(0)
