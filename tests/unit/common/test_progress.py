"""Long commands show progress: a bar with count, rate and time left on a terminal; plain
lines every few seconds and a last one at the end elsewhere. The clock is a fake one, so
nothing here depends on how fast the machine is."""

from __future__ import annotations

import io

from services.common.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_interval_then_a_final_line() -> None:
    clock, out = FakeClock(), io.StringIO()
    with Progress(
        "backtest deals", total=100, unit="deals", stream=out, every_s=10, clock=clock
    ) as p:
        for _ in range(40):
            clock.now += 0.5  # 20 s for 40 deals
            p.advance()
    lines = out.getvalue().splitlines()
    assert lines == [
        "backtest deals: 20/100 deals (20%), 2.0 deals/s, about 40s left",
        "backtest deals: 40/100 deals (40%), 2.0 deals/s, about 30s left",
        "backtest deals: 40 deals in 20s (2.0 deals/s)",
    ]


def test_total_learnt_later_and_long_durations() -> None:
    clock, out = FakeClock(), io.StringIO()
    with Progress("dlq replay", unit="records", stream=out, every_s=60, clock=clock) as p:
        clock.now += 30
        p.advance(30)
        assert p.status_line() == "dlq replay: 30 records, 1.0 records/s"
        p.set_total(7_230)
        clock.now += 30
        p.advance(30)
    assert out.getvalue().splitlines() == [
        "dlq replay: 60/7,230 records (1%), 1.0 records/s, about 1h59m left",
        "dlq replay: 60 records in 1m00s (1.0 records/s)",
    ]


def test_nothing_printed_by_a_failed_run_but_what_was_reached() -> None:
    clock, out = FakeClock(), io.StringIO()
    try:
        with Progress("warehouse seed", total=10, stream=out, clock=clock) as p:
            p.advance(3)
            raise RuntimeError("disk full")
    except RuntimeError:
        pass
    assert "in " not in out.getvalue()  # no "done" line for work that did not finish


def test_a_terminal_gets_a_bar_with_count_rate_and_time_left() -> None:
    out = Terminal()
    with Progress("backtest deals", total=3, unit="deals", stream=out) as p:
        for _ in range(3):
            p.advance()
    screen = out.getvalue()
    assert "backtest deals" in screen and "3/3" in screen
    assert "deals/s" in screen and "left" in screen
    assert "in " not in screen.splitlines()[-1]  # the bar, not the plain final line
