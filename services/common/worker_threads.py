"""Blocking work of a service on threads of its own, awaited from the event loop, or run
in the loop's own thread when handing it over costs more than the work.

`asyncio.to_thread` runs on the loop's default pool (up to min(32, cores + 4) threads). A
service whose blocking work holds per-thread state (a DuckDB query's allocator caches, a
SQLite connection with its page and statement caches: one per thread that touches the
store) pays for that state on every pool thread that ever ran it. Where the work cannot
run in parallel anyway (one DuckDB thread, SQLite's single writer), one thread does the
same work with one copy of that state (docs/batch-pipeline.md, "Memory per service").

`inline=True` runs the work in the caller's thread (the event loop's). A hand-over to a
worker thread and back is two cross-thread wake-ups, ~0.1-0.4 ms of CPU on a 2-core VM when
the loop is otherwise idle: more than an embedded read or transaction of a batch of one
costs. For short work on a local file (no network round trip the loop could overlap with
other I/O) the loop loses nothing by doing it itself; work that waits on a server (Firebolt,
PostgreSQL) or that may run for seconds (a fleet-wide query) stays on a worker thread, so
the loop keeps answering heartbeats and health checks meanwhile (docs/batch-pipeline.md,
"Fifteenth round").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerThreads:
    """`await threads.run(work, *args)`: `work(*args)` on this pool's threads, or in the
    caller's thread when `inline`. Idle workers end with the interpreter
    (concurrent.futures joins them at exit); an inline pool never starts one."""

    def __init__(self, name: str, max_workers: int | None = 1, *, inline: bool = False) -> None:
        self.inline = inline
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Short work: in the caller's thread when `inline`, else on a worker thread."""
        if self.inline:
            return work(*args)
        return await self.in_thread(work, *args)

    async def in_thread(self, work: Callable[..., T], *args: Any) -> T:
        """Work that may wait long (a fleet-wide query): on a worker thread, inline or not."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
