"""The bare pipeline's topics and processes: by default `peer.<run>.s0` -> stage 1 -> `.s1` ->
... -> stage 4 -> `.s4` (`shape.FOUR_STAGES`; `shape.PRODUCT_SHAPE` is the project's flow),
each stage its own process and consumer group, every topic with as many partitions as the
project's (6). Topics are the run's own and are deleted afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from bench.peer.shape import FOUR_STAGES, Shape

STAGES = len(FOUR_STAGES.stages)
PARTITIONS = 6
READY_TIMEOUT_S = 120.0
BENCH_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PeerPipeline:
    bootstrap: str
    topics: list[str]  # topics[0] is where flows enter, topics[-1] where they leave
    processes: dict[str, subprocess.Popen[str]]

    @property
    def source(self) -> str:
        return self.topics[0]

    @property
    def sink(self) -> str:
        return self.topics[-1]

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items()}


async def _admin(
    bootstrap: str,
    create: list[str] | None,
    delete: list[str] | None,
    groups: list[str] | None = None,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if create:
            await admin.create_topics(
                [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in create]
            )
            await _wait_for_leaders(admin, create)
        if groups:
            await _wait_for_coordinators(admin, groups)
        if delete:
            await admin.delete_topics(delete)
    finally:
        await admin.close()


async def _wait_for_coordinators(admin: AIOKafkaAdminClient, groups: list[str]) -> None:
    """Wait until the broker names a coordinator for each of the stages' groups. A freshly
    started broker creates its offsets topic on the first such request; consumers that
    start before its partitions have leaders log "Marking the coordinator dead" while
    they retry, which is noise in the bench's output, not a failure."""
    for group in groups:
        for _ in range(150):
            try:
                await admin.find_coordinator(group)
                break
            except KafkaError:  # not available yet, or still loading
                await asyncio.sleep(0.2)


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    """Until every partition of the new topics has a leader: stages started earlier log
    NotLeaderForPartition errors while they look up their first offsets."""
    for _ in range(150):
        described = await admin.describe_topics(topics)
        led = [
            p
            for t in described
            if t["error_code"] == 0
            for p in t["partitions"]
            if p["error_code"] == 0 and p["leader"] >= 0
        ]
        if len(led) == len(topics) * PARTITIONS:
            return
        await asyncio.sleep(0.2)


def _await_ready(processes: dict[str, subprocess.Popen[str]]) -> None:
    """Block until every stage printed `ready`; fail with the stage's output otherwise."""

    def read_until_ready(name: str, proc: subprocess.Popen[str], seen: list[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                seen.append(name)
                return

    seen: list[str] = []
    readers = [
        threading.Thread(target=read_until_ready, args=(name, proc, seen), daemon=True)
        for name, proc in processes.items()
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(READY_TIMEOUT_S)
    missing = sorted(set(processes) - set(seen))
    if missing:
        codes = {name: processes[name].poll() for name in missing}
        raise RuntimeError(f"bare pipeline stages not ready (exit codes {codes})")


def stop_processes(processes: dict[str, subprocess.Popen[str]], timeout_s: float = 10.0) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in processes.values():
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def peer_pipeline(bootstrap: str, shape: Shape = FOUR_STAGES) -> Iterator[PeerPipeline]:
    """Create the run's topics, start the shape's stages, and remove both on the way out
    (normal exit, an exception, or KeyboardInterrupt)."""
    run = uuid.uuid4().hex[:8]
    topics = [f"peer.{run}.s{i}" for i in range(shape.topics)]
    groups = {name: f"peer.{run}.{name}" for name in shape.stages}
    asyncio.run(_admin(bootstrap, create=topics, delete=None, groups=list(groups.values())))
    processes: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, routes in shape.stages.items():
            processes[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.peer.stage",
                    "--bootstrap",
                    bootstrap,
                    "--group",
                    groups[name],
                    "--commit-interval-ms",
                    str(shape.commit_interval_ms),
                    *(arg for route in routes for arg in route.as_args(topics)),
                ],
                cwd=BENCH_ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
        _await_ready(processes)
        yield PeerPipeline(bootstrap, topics, processes)
    finally:
        stop_processes(processes)
        with suppress(Exception):  # the broker may be gone; the topics are the run's own
            asyncio.run(_admin(bootstrap, create=None, delete=topics))
