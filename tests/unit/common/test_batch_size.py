"""AdaptiveBatchSize: the poll cap grows while polls come back full and shrinks once they
come back well under it, within its bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.batch_size import AdaptiveBatchSize


def test_starts_small_and_doubles_while_polls_come_back_full_up_to_the_largest() -> None:
    size = AdaptiveBatchSize(50, 500)
    assert size.current == 50
    assert [size.after_poll(size.current) for _ in range(5)] == [100, 200, 400, 500, 500]


def test_shrinks_only_when_a_poll_is_well_under_the_cap() -> None:
    size = AdaptiveBatchSize(50, 500)
    for _ in range(4):
        size.after_poll(size.current)
    assert size.current == 500
    assert size.after_poll(300) == 500  # keeping up, but not by much: unchanged
    assert size.after_poll(125) == 250  # a quarter of the cap or less: halved
    assert size.after_poll(1) == 125
    assert size.after_poll(1) == 62
    assert size.after_poll(1) == 50  # never below the smallest
    assert size.after_poll(1) == 50


def test_a_largest_below_the_smallest_caps_both() -> None:
    size = AdaptiveBatchSize(50, 20)
    assert size.current == 20
    assert size.after_poll(20) == 20


def test_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveBatchSize(0, 10)


@given(
    smallest=st.integers(1, 600),
    largest=st.integers(1, 600),
    polls=st.lists(st.integers(1, 600), max_size=30),
)
def test_the_cap_stays_within_its_bounds(smallest: int, largest: int, polls: list[int]) -> None:
    size = AdaptiveBatchSize(smallest, largest)
    for consumed in polls:
        cap = size.after_poll(min(consumed, size.current))
        assert min(smallest, largest) <= cap <= largest
