"""StopSignals: a stop signal ends `revops run`/`demo` wherever it lands. Each case runs in
a child interpreter that signals itself, so the test runner's own handlers are untouched."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import asyncio, os, signal, sys, time
from services.cli.stop_signals import StopSignals

def stop_stack():
    print("stack stopped", flush=True)

stop = StopSignals(stop_stack, grace_s=GRACE)
stop.install()
SIG = signal.Signals(SIGNUM)
"""


def run_child(
    body: str, sig: signal.Signals, grace_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    code = PRELUDE.replace("GRACE", repr(grace_s)).replace("SIGNUM", str(int(sig)))
    return subprocess.run(
        [sys.executable, "-c", code + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=60,
    )


STOP_SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]


@pytest.mark.parametrize("sig", STOP_SIGNALS, ids=str)
def test_a_signal_in_the_event_loop_cancels_the_coroutine_and_its_clean_up_runs(
    sig: signal.Signals,
) -> None:
    result = run_child(
        """
        async def watch():
            try:
                os.kill(os.getpid(), SIG)
                await asyncio.sleep(30)
                print("not interrupted", flush=True)
            finally:
                await asyncio.sleep(0.01)  # an async clean-up, as aiokafka's stop()
                print("clean-up done", flush=True)

        try:
            stop.run(watch())
        except KeyboardInterrupt as exc:
            print(f"interrupted by {exc}", flush=True)
        print("handler back:", signal.getsignal(SIG) == stop._interrupt, flush=True)
        """,
        sig,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "clean-up done",
        f"interrupted by {sig.name}",
        "handler back: True",
    ]


def test_a_coroutine_that_swallows_the_cancellation_still_ends_in_keyboard_interrupt() -> None:
    result = run_child(
        """
        async def stubborn():
            os.kill(os.getpid(), SIG)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                return "swallowed"

        try:
            print(stop.run(stubborn()), flush=True)
        except KeyboardInterrupt as exc:
            print(f"interrupted by {exc}", flush=True)
        """,
        signal.SIGHUP,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["interrupted by SIGHUP"]


def test_outside_the_event_loop_a_signal_interrupts_synchronous_work() -> None:
    result = run_child(
        """
        try:
            os.kill(os.getpid(), SIG)
            time.sleep(30)
            print("not interrupted", flush=True)
        except KeyboardInterrupt as exc:
            print(f"interrupted by {exc}", flush=True)
        """,
        signal.SIGTERM,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["interrupted by SIGTERM"]


def test_a_clean_up_that_hangs_is_cut_short_the_stack_stopped_and_the_process_exits() -> None:
    result = run_child(
        """
        async def hangs():
            try:
                os.kill(os.getpid(), SIG)
                await asyncio.sleep(30)
            finally:
                time.sleep(50)  # blocks the loop: no cancellation can end this

        stop.run(hangs())
        print("not reached", flush=True)
        """,
        signal.SIGHUP,
        grace_s=1.0,
    )
    assert result.returncode == 128 + signal.SIGHUP
    assert result.stdout.splitlines() == ["stack stopped"]
    assert "still not stopped 1 s after SIGHUP" in result.stderr


def test_a_second_signal_does_not_start_a_second_watchdog_or_change_the_reason() -> None:
    result = run_child(
        """
        async def twice():
            try:
                os.kill(os.getpid(), SIG)
                await asyncio.sleep(30)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(50)

        stop.run(twice())
        """,
        signal.SIGHUP,
        grace_s=1.0,
    )
    assert result.returncode == 128 + signal.SIGHUP
    assert result.stdout.splitlines() == ["stack stopped"]
