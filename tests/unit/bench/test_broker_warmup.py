"""bench.run_all.warm_until_settled: warm-up rounds until the broker's JIT compiler settles."""

from __future__ import annotations

from collections.abc import Sequence

from bench.run_all import JIT_SETTLED_SHARE, WARMUP_MAX_ROUNDS, warm_until_settled


class FakeBroker:
    """Each round takes `round_s` of (fake) time and `jit_per_round[i]` CPU s of JIT."""

    def __init__(self, jit_per_round: Sequence[float], round_s: float = 8.0) -> None:
        self.jit_per_round = list(jit_per_round)
        self.round_s = round_s
        self.now = 100.0
        self.jit = 3.0  # what the compiler used before the warm-up
        self.rounds = 0

    def run_round(self) -> None:
        self.now += self.round_s
        self.jit += self.jit_per_round[self.rounds]
        self.rounds += 1

    def clock(self) -> float:
        return self.now

    def jit_s(self) -> float:
        return self.jit


def test_rounds_repeat_until_one_leaves_the_compiler_under_its_share() -> None:
    # The fresh broker measured on the bench's box: 5.2, 3.5, 0.9, 0.45 CPU s in 8 s rounds.
    broker = FakeBroker([5.2, 3.5, 0.9, 0.45, 0.3, 0.2])
    assert 0.45 < JIT_SETTLED_SHARE * 8.0 < 0.9  # the case this test is about
    report = warm_until_settled(broker.run_round, broker.jit_s, broker.clock)
    assert broker.rounds == 4
    assert report == {"seconds": 32.0, "rounds": 4, "jit_cpu_s": 10.05}


def test_a_warm_broker_takes_one_round() -> None:
    broker = FakeBroker([0.1, 0.1])
    report = warm_until_settled(broker.run_round, broker.jit_s, broker.clock)
    assert broker.rounds == 1
    assert report["rounds"] == 1 and report["seconds"] == 8.0


def test_a_compiler_that_never_settles_stops_after_the_last_round() -> None:
    broker = FakeBroker([5.0] * (WARMUP_MAX_ROUNDS + 2))
    report = warm_until_settled(broker.run_round, broker.jit_s, broker.clock)
    assert broker.rounds == WARMUP_MAX_ROUNDS
    assert report["jit_cpu_s"] == 5.0 * WARMUP_MAX_ROUNDS
