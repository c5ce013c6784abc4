"""How long won deals spent in each stage: warehouse-wide statistics, kept for a while.

A deal's dataset compares its time in its stage with the deals won before the day (the
median over all of them, and over those of the deal's segment). Those figures are
aggregates over every won deal, not rows of the deal: the same for every deal in that stage
on that day, and the costliest reads of a small batch (two grouping queries over the whole
stage history, ~7-8 ms each on the demo warehouse, against ~1-3 ms for a subject's table).

`WonTimes` keeps them per (day, stage) for `ttl_s` seconds (`REVOPS_WAREHOUSE_STATS_TTL_S`),
so a service reading one or two deals at a time reads them once per stage every few minutes
instead of in every batch. They change only when a deal is won or a stage history is
restated by a warehouse load; a figure at most `ttl_s` old is what the analysis would have
seen a few minutes earlier. A new warehouse day is a new key, read at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import date

from services.data_agent.warehouse.base import Row

#: A stage's rows: (the rows over all won deals, the rows per segment), as the set-based
#: queries `won_time_by_stage` / `won_time_by_segment` return them for that stage.
StageRows = tuple[list[Row], list[Row]]
#: Reads the rows of `stages` (every stage asked for present in the answer).
ReadStages = Callable[[Sequence[str]], dict[str, StageRows]]

#: Entries kept at most (a service asks for a few stages on one or two days).
MAX_ENTRIES = 4096


class WonTimes:
    """Won-time rows per (day, stage), each kept `ttl_s` seconds after it was read.

    Safe to share between threads: a read for missing stages runs under the lock, so two
    threads asking for the same stage read it once."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.ttl_s = ttl_s
        self._clock = clock
        self._rows: dict[tuple[date, str], tuple[float, StageRows]] = {}
        self._lock = threading.Lock()
        #: Stages read from the warehouse so far (for tests and logs).
        self.stages_read = 0

    def rows(self, day: date, stages: Sequence[str], read: ReadStages) -> dict[str, StageRows]:
        """The rows of `stages` on `day`: kept ones still fresh, the others read (together,
        with one `read` call) and kept."""
        now = self._clock()
        with self._lock:
            answer: dict[str, StageRows] = {}
            missing: list[str] = []
            for stage in stages:
                kept = self._rows.get((day, stage))
                if kept is not None and now - kept[0] < self.ttl_s:
                    answer[stage] = kept[1]
                else:
                    missing.append(stage)
            if missing:
                fresh = read(missing)
                self.stages_read += len(missing)
                self._forget_expired(now)
                for stage in missing:
                    answer[stage] = fresh[stage]
                    self._rows[(day, stage)] = (now, fresh[stage])
            return answer

    def _forget_expired(self, now: float) -> None:
        expired = [key for key, (at, _) in self._rows.items() if now - at >= self.ttl_s]
        for key in expired:
            del self._rows[key]
        while len(self._rows) >= MAX_ENTRIES:  # oldest first (insertion order)
            del self._rows[next(iter(self._rows))]
