"""The bare pipeline's figures: sustained flows/s with 2 KB and 20 KB records, latency p50/p99
at 50 flows/s and at half of its capacity, CPU ms per flow per process (broker included) and
peak RSS, measured the way bench/run_all measures the project:

- throughput: a burst offered at once, counted between the 10th and the 90th percentile
  completion (start-up and tail excluded);
- latency: open-loop publishing at a fixed rate, from the hand-over to the producer to the
  produce timestamp of the flow's record on the last topic (Kafka CreateTime, set by stage 4);
- CPU: psutil CPU seconds of every stage and of the broker (when it runs on this machine)
  over the run, divided by the flows completed.

Flows are identified by a `flow` header that every stage forwards, so the collector does not
parse the documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.peer.client_settings import LINGER_MS
from bench.peer.documents import FLOW_HEADER, document
from bench.peer.pipeline import PARTITIONS, PeerPipeline, peer_pipeline
from bench.peer.shape import FOUR_STAGES, PRODUCT_SHAPE, Shape
from bench.procstats import ResourceSampler, broker_pid

ACCOUNTS = 500  # distinct keys: per-account order, spread over the partitions


@dataclass
class Collector:
    """Reads the last topic from its beginning: flow -> produce time of its first record."""

    pipeline: PeerPipeline
    done_at: dict[str, float] = field(default_factory=dict)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.pipeline.bootstrap)
        await consumer.start()
        # The run created the topic with PARTITIONS partitions (fresh metadata may lag).
        tps = [TopicPartition(self.pipeline.sink, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    flow = dict(record.headers).get(FLOW_HEADER, b"").decode()
                    self.done_at.setdefault(flow, record.timestamp / 1000)
            if batches:
                self._changed.set()

    async def wait_for(self, flows: Sequence[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while any(f not in self.done_at for f in flows) and time.monotonic() < deadline:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 1.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()


@dataclass
class Phase:
    """What one load phase measured."""

    offered_rate: float | None  # flows/s; None: offered all at once
    flows: int
    completed: int
    steady_flows_per_s: float
    latency_ms: dict[str, float]
    cpu_ms_per_flow: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    if not values_ms:
        return {}
    arr = np.asarray(values_ms)
    return {f"p{q}": round(float(np.percentile(arr, q)), 1) for q in (50, 95, 99)} | {
        "max": round(float(arr.max()), 1)
    }


def steady_throughput(done_times: Sequence[float]) -> float:
    """Flows/s between the 10th and the 90th percentile completion."""
    ordered = sorted(done_times)
    if len(ordered) < 20:
        return 0.0
    lo, hi = ordered[len(ordered) // 10], ordered[(len(ordered) * 9) // 10]
    return round(len(ordered) * 0.8 / max(hi - lo, 1e-6), 1)


class LoadRunner:
    """Publishes flows into the pipeline and reads their completions."""

    def __init__(self, pipeline: PeerPipeline, sampler: ResourceSampler) -> None:
        self.pipeline = pipeline
        self.sampler = sampler
        self.collector = Collector(pipeline)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=LINGER_MS
        )
        self._runs = itertools.count()

    async def __aenter__(self) -> LoadRunner:
        await self._producer.start()
        await self.collector.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.collector.stop()
        await self._producer.stop()

    async def phase(
        self,
        count: int,
        size: int,
        rate: float | None,
        timeout_s: float = 600.0,
        rows_per_step: int = 8,
    ) -> Phase:
        """`count` flows of `size`-byte documents, at `rate` flows/s (None: all at once)."""
        run = next(self._runs)
        flows = [f"r{run}-{i}" for i in range(count)]
        docs = {f: document(f, size, rows_per_step) for f in flows}
        sent_at: dict[str, float] = {}
        cpu_before = self.sampler.snapshot()
        started = time.monotonic()
        acks = []
        for i, flow in enumerate(flows):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            sent_at[flow] = time.time()
            acks.append(
                await self._producer.send(
                    self.pipeline.source,
                    docs[flow],
                    key=f"acct-{i % ACCOUNTS}".encode(),
                    headers=[(FLOW_HEADER, flow.encode())],
                )
            )
        await asyncio.gather(*acks)
        await self.collector.wait_for(flows, timeout_s)
        cpu_after = self.sampler.snapshot()
        done = {f: self.collector.done_at[f] for f in flows if f in self.collector.done_at}
        completed = max(len(done), 1)
        return Phase(
            offered_rate=rate,
            flows=count,
            completed=len(done),
            steady_flows_per_s=steady_throughput(list(done.values())),
            latency_ms=percentiles([(done[f] - sent_at[f]) * 1000 for f in done]),
            cpu_ms_per_flow={
                name: round((cpu_after[name] - cpu_before.get(name, 0.0)) * 1000 / completed, 2)
                for name in cpu_after
            },
        )


@dataclass(frozen=True)
class PeerSizes:
    """How much load each phase offers (the defaults keep `make bench` short)."""

    burst_2kb: int = 4000
    burst_20kb: int = 1200
    latency_s: float = 10.0
    warmup: int = 300
    burst_product_shape: int = 1500  # 0: the product-shaped pipeline is not run

    @classmethod
    def full(cls) -> PeerSizes:
        return cls(
            burst_2kb=20_000,
            burst_20kb=5_000,
            latency_s=30.0,
            warmup=1000,
            burst_product_shape=5000,
        )


async def _phases(runner: LoadRunner, sizes: PeerSizes) -> dict[str, Phase]:
    phases = {
        "warmup": await runner.phase(sizes.warmup, 2048, None),
        "sustained_2kb": await runner.phase(sizes.burst_2kb, 2048, None),
        "sustained_20kb": await runner.phase(sizes.burst_20kb, 20 * 1024, None),
    }
    light = max(1, int(50 * sizes.latency_s))
    phases["latency_at_50_flows_per_s"] = await runner.phase(light, 2048, 50.0)
    half = max(1.0, phases["sustained_2kb"].steady_flows_per_s / 2)
    phases["latency_at_half_capacity"] = await runner.phase(
        max(1, int(half * sizes.latency_s)), 2048, half
    )
    return phases


@dataclass(frozen=True)
class PlannedPhase:
    """A load phase of the project's run, offered again to the flow's bare pipeline."""

    name: str
    flows: int
    rate: float | None  # flows/s; None: all at once


# Phases named so in the product-shaped results replay the project's run (`PlannedPhase`);
# the one at the project's half capacity is named HALF_CAPACITY.
REPLAY_PREFIX = "project_"
HALF_CAPACITY = "50%"


def cpu_over(phases: Sequence[tuple[dict[str, float], int]]) -> float:
    """CPU ms per flow, all processes, over phases given as (CPU ms per flow per process,
    flows completed): each phase weighted by its flows."""
    flows = sum(completed for _, completed in phases)
    if not flows:
        return float("nan")
    return round(sum(sum(cpu.values()) * n for cpu, n in phases) / flows, 2)


async def _product_shape_phases(
    runner: LoadRunner, sizes: PeerSizes, replay: Sequence[PlannedPhase]
) -> dict[str, Phase]:
    def flows(count: int, rate: float | None) -> Any:
        return runner.phase(count, PRODUCT_SHAPE.input_size, rate, rows_per_step=1)

    phases = {"warmup": await flows(max(1, sizes.warmup // 3), None)}
    phases["sustained"] = await flows(sizes.burst_product_shape, None)
    phases["latency_at_50_flows_per_s"] = await flows(max(1, int(50 * sizes.latency_s)), 50.0)
    for planned in replay:
        phases[REPLAY_PREFIX + planned.name] = await flows(planned.flows, planned.rate)
    return phases


@dataclass
class Measured:
    phases: dict[str, Phase]
    usage: dict[str, dict[str, Any]]  # per process: CPU seconds, peak RSS
    cpu_s: dict[str, float]  # per process, over all the phases
    topics: list[str]


def _measure(
    bootstrap: str, shape: Shape, phases_of: Callable[[LoadRunner], Awaitable[dict[str, Phase]]]
) -> Measured:
    """Start a bare pipeline of `shape`, run `phases_of` through it with every stage's CPU and
    the broker's sampled, stop it."""
    with peer_pipeline(bootstrap, shape) as pipeline:
        processes = pipeline.pids()
        broker = broker_pid(bootstrap)
        if broker is not None:
            processes["kafka_broker"] = broker
        with ResourceSampler(processes) as sampler:

            async def measure() -> dict[str, Phase]:
                async with LoadRunner(pipeline, sampler) as runner:
                    return await phases_of(runner)

            phases = asyncio.run(measure())
            cpu_s = sampler.snapshot()
        usage = {name: vars(u) for name, u in sampler.usage.items()}
    return Measured(phases, usage, cpu_s, pipeline.topics)


def run_product_shape(
    bootstrap: str, sizes: PeerSizes, replay: Sequence[PlannedPhase] = ()
) -> dict[str, Any]:
    """The bare pipeline of the project's flow (`shape.PRODUCT_SHAPE`): a burst, 50 flows/s,
    then the project's own load phases (`replay`) at their rates and sizes, with each phase's
    CPU per flow per process (broker included)."""
    run = _measure(bootstrap, PRODUCT_SHAPE, lambda r: _product_shape_phases(r, sizes, replay))
    return {
        "phases": {name: p.as_dict() for name, p in run.phases.items()},
        "resources": run.usage,
        "topics": run.topics,
    }


def run_peer(
    bootstrap: str, sizes: PeerSizes | None = None, replay: Sequence[PlannedPhase] = ()
) -> dict[str, Any]:
    """Start the bare pipeline on `bootstrap`, measure it, stop it; then the same for the
    bare pipeline of the project's shape unless `sizes` says not to, `replay` being the
    project's load phases to offer it too. Returns the figures (the `headline` entry holds
    the numbers to compare with the project's)."""
    sizes = sizes or PeerSizes()
    run = _measure(bootstrap, FOUR_STAGES, lambda r: _phases(r, sizes))
    flows = sum(p.completed for p in run.phases.values())
    results: dict[str, Any] = {
        "phases": {name: p.as_dict() for name, p in run.phases.items()},
        "resources": run.usage,
        "cpu_ms_per_flow": {
            name: round(cpu * 1000 / max(flows, 1), 2) for name, cpu in run.cpu_s.items()
        },
        "flows_completed": flows,
        "sizes": vars(sizes),
        "topics": run.topics,
    }
    if sizes.burst_product_shape:
        results["product_shape"] = run_product_shape(bootstrap, sizes, replay)
    results["headline"] = headline(results)
    return results


def headline(results: dict[str, Any]) -> dict[str, float]:
    """The figures issue 15's targets compare, under names `ratios.format_ratios` pairs."""
    phases = results["phases"]
    light = phases["latency_at_50_flows_per_s"]["latency_ms"]
    half = phases["latency_at_half_capacity"]["latency_ms"]
    stages = {k: v for k, v in results["resources"].items() if k != "kafka_broker"}
    return {
        "sustained_flows_per_s": phases["sustained_2kb"]["steady_flows_per_s"],
        "sustained_flows_per_s_20kb": phases["sustained_20kb"]["steady_flows_per_s"],
        "p50_ms_at_50_flows_per_s": light.get("p50", float("nan")),
        "p99_ms_at_50_flows_per_s": light.get("p99", float("nan")),
        "p50_ms_at_half_capacity": half.get("p50", float("nan")),
        "p99_ms_at_half_capacity": half.get("p99", float("nan")),
        "cpu_ms_per_flow": round(sum(results["cpu_ms_per_flow"].values()), 2),
        "peak_rss_mb_per_service": max((u["peak_rss_mb"] for u in stages.values()), default=0.0),
    } | _product_shape_headline(results.get("product_shape"))


def _product_shape_headline(shaped: dict[str, Any] | None) -> dict[str, float]:
    if not shaped:
        return {}
    burst = shaped["phases"]["sustained"]
    light = shaped["phases"]["latency_at_50_flows_per_s"]
    replayed = [p for name, p in shaped["phases"].items() if name.startswith(REPLAY_PREFIX)]
    half = shaped["phases"].get(f"{REPLAY_PREFIX}{HALF_CAPACITY}", {}).get("latency_ms", {})
    return {
        "cpu_ms_per_flow_over_the_load_phases_product_shape": cpu_over(
            [(p["cpu_ms_per_flow"], p["completed"]) for p in replayed]
        ),
        "p99_ms_at_half_capacity_product_shape": half.get("p99", float("nan")),
        "sustained_flows_per_s_product_shape": burst["steady_flows_per_s"],
        "p50_ms_at_50_flows_per_s_product_shape": light["latency_ms"].get("p50", float("nan")),
        "cpu_ms_per_flow_in_burst_product_shape": round(sum(burst["cpu_ms_per_flow"].values()), 2),
        "cpu_ms_per_flow_at_50_flows_per_s_product_shape": round(
            sum(light["cpu_ms_per_flow"].values()), 2
        ),
    }
