"""Scale-out check: three decision-agent replicas in one consumer group share the load
(every replica consumes, by its /metrics), and nothing is lost when one of them is killed
mid-run (the group rebalances its partitions to the survivors)."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness import Pipeline, trigger_mix
from bench.load import FlowCollector, TriggerPublisher
from bench.sink import free_port
from services.cli.orchestrator import LocalStack

SERVICE = "decision_agent"


def consumed(metrics_text: str, topic: str) -> float:
    pattern = re.compile(
        r'^revops_messages_consumed_total\{[^}]*topic="' + re.escape(topic) + r'"[^}]*\}\s+(\S+)',
        re.M,
    )
    return sum(float(m.group(1)) for m in pattern.finditer(metrics_text))


@dataclass
class ScaleOutResult:
    replicas: int
    triggers: int
    completed: int = 0
    consumed_before_kill: dict[str, float] = field(default_factory=dict)
    killed: str = ""
    seconds: float = 0.0
    throughput: float = 0.0

    @property
    def ok(self) -> bool:
        shared = all(v > 0 for v in self.consumed_before_kill.values())
        return shared and self.completed == self.triggers

    def as_dict(self) -> dict[str, Any]:
        return {
            "replicas": self.replicas,
            "triggers": self.triggers,
            "completed": self.completed,
            "consumed_per_replica_before_kill": self.consumed_before_kill,
            "killed": self.killed,
            "seconds": round(self.seconds, 1),
            "throughput_flows_per_s": round(self.throughput, 1),
            "ok": self.ok,
        }


async def wait_ready(port: int, timeout_s: float = 90.0, give_up: bool = True) -> float:
    """Seconds until the process on `port` answers /readyz with 200. After `timeout_s` it
    raises (`give_up`) or returns the time waited (a fault run records it as the recovery)."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() - started < timeout_s:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    if give_up:
        raise RuntimeError(f"the process on port {port} is not ready after {timeout_s:.0f} s")
    return time.monotonic() - started


async def replicas_ready(stack: LocalStack, timeout_s: float = 180.0) -> None:
    """Every extra replica the stack started answers /readyz."""
    await asyncio.gather(*(wait_ready(port, timeout_s) for port in stack.replica_ports.values()))


async def _consumed_per_replica(ports: dict[str, int], topic: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        return {
            key: consumed((await client.get(f"http://127.0.0.1:{port}/metrics")).text, topic)
            for key, port in ports.items()
        }


async def run_scale_out(
    p: Pipeline,
    triggers: int = 150,
    rate: float = 15.0,
    kill_at: float = 0.4,
    timeout_s: float = 180.0,
) -> ScaleOutResult:
    """Adds replicas #1 and #2 next to the stack's decision agent (#0), runs the load, and
    kills #1 once `kill_at` of the flows completed."""
    stack = p.stack
    ports = {f"{SERVICE}#0": stack.ports[SERVICE]}
    for index in (1, 2):
        key = stack.start_replica(SERVICE, index, free_port())
        ports[key] = stack.replica_ports[key]
    await asyncio.gather(*(wait_ready(port) for port in ports.values()))
    await asyncio.sleep(2.0)  # let the group settle on three members before the load
    result = ScaleOutResult(replicas=len(ports), triggers=triggers)
    topic = p.settings.topics.datasets
    # Replica #0 has served the earlier phases of the bench: count this run's records only.
    baseline = await _consumed_per_replica(ports, topic)
    batch = trigger_mix(p.settings, triggers, f"scale-{uuid.uuid4().hex[:6]}")
    wanted = {str(t.request_id) for t in batch}
    collector = FlowCollector(p.settings)
    await collector.start()
    publisher = TriggerPublisher(p.settings)
    await publisher.start()
    started = time.monotonic()
    try:
        publishing = asyncio.create_task(publisher.send_at_rate(batch, rate))
        while collector.completed(wanted) < kill_at * triggers:
            if time.monotonic() - started > timeout_s:
                break
            await asyncio.sleep(0.1)
        now = await _consumed_per_replica(ports, topic)
        result.consumed_before_kill = {key: now[key] - baseline[key] for key in ports}
        victim = f"{SERVICE}#1"
        stack.replicas[victim].send_signal(signal.SIGKILL)
        result.killed = victim
        await collector.wait_for(wanted, max(1.0, timeout_s - (time.monotonic() - started)))
        await publishing
    finally:
        await publisher.stop()
        await collector.stop()
    result.seconds = time.monotonic() - started
    result.completed = collector.completed(wanted)
    result.throughput = result.completed / result.seconds if result.seconds else 0.0
    return result
