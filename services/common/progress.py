"""Progress of a long command: a bar with count, rate and time left on a terminal (rich), a
plain line every few seconds (and one at the end) when the output goes to a file or a log.

    with Progress("backtest deals", total=len(rows), unit="deals") as progress:
        for row in rows:
            ...
            progress.advance()

The bar and the lines go to stderr, so a command's own output (a table, --json) stays clean
on stdout; `log()` prints a line of the command's output above the bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import Task, TaskID

PLAIN_EVERY_S = 10.0


class Progress:
    """`interactive` defaults to whether `stream` is a terminal. `clock` and `every_s` set
    the rhythm of the plain lines (tests pass a fake clock)."""

    def __init__(
        self,
        description: str,
        total: int | None = None,
        unit: str = "items",
        *,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        every_s: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0
        self._stream = stream or sys.stderr
        self._interactive = _is_terminal(self._stream) if interactive is None else interactive
        self._every_s = every_s
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None

    # -- use ---------------------------------------------------------------------------------

    def set_total(self, total: int) -> None:
        """When the amount of work is known only once it starts."""
        self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)
        elif not self._interactive and self._clock() - self._last_line >= self._every_s:
            self._write(self.status_line())

    @staticmethod
    def log(line: str) -> None:
        """A line of the command's own output, on stdout (above the bar on a terminal)."""
        print(line, flush=True)

    # -- text --------------------------------------------------------------------------------

    def status_line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = self.done / elapsed
        count = f"{self.done:,}" + (f"/{self.total:,}" if self.total is not None else "")
        parts = [f"{self.description}: {count} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.done / self.total:.0f}%)"
        parts.append(f"{rate:,.1f} {self.unit}/s")
        if self.total is not None and rate > 0 and self.done < self.total:
            parts.append(f"about {_duration((self.total - self.done) / rate)} left")
        return ", ".join(parts)

    def final_line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        return (
            f"{self.description}: {self.done:,} {self.unit} in {_duration(elapsed)} "
            f"({self.done / elapsed:,.1f} {self.unit}/s)"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Progress:
        self._started = self._last_line = self._clock()
        if self._interactive:
            self._bar = _rich_bar(self._stream, self.unit)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif exc_type is None:
            self._write(self.final_line())

    def _write(self, line: str) -> None:
        self._last_line = self._clock()
        self._stream.write(line + "\n")
        self._stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _rich_bar(stream: TextIO, unit: str) -> RichProgress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.1f} {unit}/s" if speed else f"- {unit}/s")

    return RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(file=stream),
        # Output printed meanwhile goes above the bar, unless stdout is a file or a pipe.
        redirect_stdout=sys.stdout.isatty(),
        redirect_stderr=False,
    )
