"""Blocking work of a service on threads of its own, awaited from the event loop.

`asyncio.to_thread` runs on the loop's default pool (up to min(32, cores + 4) threads). A
service whose blocking work holds per-thread state (a DuckDB query's allocator caches, a
SQLite connection with its page and statement caches: one per thread that touches the
store) pays for that state on every pool thread that ever ran it. Where the work cannot
run in parallel anyway (one DuckDB thread, SQLite's single writer), one thread does the
same work with one copy of that state (docs/batch-pipeline.md, "Memory per service").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerThreads:
    """`await threads.run(work, *args)`: `work(*args)` on this pool's threads. Idle workers
    end with the interpreter (concurrent.futures joins them at exit)."""

    def __init__(self, name: str, max_workers: int | None = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
