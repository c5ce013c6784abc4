"""The bare-pipeline peer on a real broker: every flow crosses four stages that really parse
and rewrite it, the figures are complete, and nothing is left behind on exit, Ctrl-C,
SIGTERM or when its parent is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import orjson
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.peer import HALF_CAPACITY, PeerSizes, PlannedPhase, run_peer
from bench.peer.measure import FLOW_HEADER, document
from bench.peer.pipeline import BENCH_ROOT, PARTITIONS, STAGES, peer_pipeline
from bench.peer.shape import PRODUCT_SHAPE

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

TINY = PeerSizes(burst_2kb=120, burst_20kb=40, latency_s=1.0, warmup=20, burst_product_shape=60)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait(condition, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _peer_topics(bootstrap: str, delete: set[str] | None = None) -> set[str]:
    async def listed() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            if delete:
                await admin.delete_topics(sorted(delete))
            return {t for t in await admin.list_topics() if t.startswith("peer.")}
        finally:
            await admin.close()

    return asyncio.run(listed())


def test_every_flow_crosses_four_stages_that_parse_it(kafka: str) -> None:
    async def through(topics: list[str]) -> list[dict]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            for i in range(12):
                await producer.send_and_wait(
                    topics[0],
                    document(f"f-{i}", 2048),
                    key=f"acct-{i % 3}".encode(),
                    headers=[(FLOW_HEADER, f"f-{i}".encode())],
                )
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
        await consumer.start()
        try:
            tps = [TopicPartition(topics[-1], p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            out: list[dict] = []
            deadline = time.monotonic() + 60
            while len(out) < 12 and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out += [orjson.loads(r.value) | {"_header": dict(r.headers)} for r in records]
            return out
        finally:
            await consumer.stop()

    with peer_pipeline(kafka) as pipeline:
        assert len(pipeline.topics) == STAGES + 1
        assert all(t.startswith("peer.") for t in pipeline.topics)
        docs = asyncio.run(through(pipeline.topics))
    assert sorted(d["flow_id"] for d in docs) == sorted(f"f-{i}" for i in range(12))
    assert {d["hops"] for d in docs} == {STAGES}  # each stage parsed it and wrote it again
    assert all(d["_header"][FLOW_HEADER].decode() == d["flow_id"] for d in docs)


def test_run_peer_measures_every_phase_and_cleans_up(kafka: str) -> None:
    replay = [PlannedPhase("saturation", 40, None), PlannedPhase(HALF_CAPACITY, 20, 40.0)]
    results = run_peer(kafka, TINY, replay=replay)
    phases = results["phases"]
    assert set(phases) == {
        "warmup",
        "sustained_2kb",
        "sustained_20kb",
        "latency_at_50_flows_per_s",
        "latency_at_half_capacity",
    }
    for name, phase in phases.items():
        assert phase["completed"] == phase["flows"], name
        assert phase["latency_ms"]["p50"] > 0, name
    assert phases["sustained_2kb"]["steady_flows_per_s"] > 0
    assert phases["latency_at_50_flows_per_s"]["offered_rate"] == 50.0
    stages = [f"peer_stage_{i}" for i in range(1, STAGES + 1)]
    assert set(stages) <= set(results["cpu_ms_per_flow"])
    assert all(results["resources"][s]["peak_rss_mb"] > 0 for s in stages)
    headline = results["headline"]
    assert headline["cpu_ms_per_flow"] >= sum(results["cpu_ms_per_flow"][s] for s in stages)
    assert headline["peak_rss_mb_per_service"] == max(
        results["resources"][s]["peak_rss_mb"] for s in stages
    )
    shaped = results["product_shape"]
    assert set(shaped["phases"]) == {
        "warmup",
        "sustained",
        "latency_at_50_flows_per_s",
        "project_saturation",  # the project's own phases, offered again at their rates
        f"project_{HALF_CAPACITY}",
    }
    assert shaped["phases"][f"project_{HALF_CAPACITY}"]["offered_rate"] == 40.0
    for name, phase in shaped["phases"].items():
        assert phase["completed"] == phase["flows"], name
    assert set(PRODUCT_SHAPE.stages) <= set(shaped["resources"])
    assert headline["sustained_flows_per_s_product_shape"] > 0
    assert headline["cpu_ms_per_flow_in_burst_product_shape"] > 0
    assert headline["cpu_ms_per_flow_over_the_load_phases_product_shape"] > 0
    assert headline["p99_ms_at_half_capacity_product_shape"] > 0
    run_topics = {*results["topics"], *shaped["topics"]}
    assert _wait(lambda: not run_topics & _peer_topics(kafka), 30)


def _read_all(bootstrap: str, topic: str, expected: int) -> list[tuple[dict, dict]]:
    """(document, headers) of the first `expected` records of `topic`, all partitions."""

    async def read() -> list[tuple[dict, dict]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            out: list[tuple[dict, dict]] = []
            deadline = time.monotonic() + 60
            while len(out) < expected and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out += [(orjson.loads(r.value), dict(r.headers)) for r in records]
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_the_product_shaped_pipeline_carries_the_flows_records(kafka: str) -> None:
    """A flow enters as a small trigger and leaves as one flow result after a dataset, a
    decision, actions fanned out (2.25 per flow on average) and a result per action."""

    async def send(topic: str) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            for i in range(12):
                await producer.send_and_wait(
                    topic,
                    document(f"f-{i}", PRODUCT_SHAPE.input_size, 1),
                    key=f"acct-{i % 3}".encode(),
                    headers=[(FLOW_HEADER, f"f-{i}".encode())],
                )
        finally:
            await producer.stop()

    with peer_pipeline(kafka, PRODUCT_SHAPE) as pipeline:
        assert len(pipeline.topics) == PRODUCT_SHAPE.topics == 6
        asyncio.run(send(pipeline.source))
        done = _read_all(kafka, pipeline.sink, 12)
        actions = _read_all(kafka, pipeline.topics[3], 27)
        datasets = _read_all(kafka, pipeline.topics[1], 12)
    assert sorted(d["flow_id"] for d, _ in done) == sorted(f"f-{i}" for i in range(12))
    # data, decision, execution, webhook, execution: five hops, each parsed and written
    assert {d["hops"] for d, _ in done} == {5}
    assert all(h[FLOW_HEADER].decode() == d["flow_id"] for d, h in done)
    assert len(actions) == 27  # 12 flows x 2.25 actions
    per_flow = {d["flow_id"]: int(h["parts"]) for d, h in actions}
    assert sorted(per_flow.values()) == [2] * 9 + [3] * 3
    dataset_size = len(orjson.dumps(datasets[0][0]))
    assert 31.7 * 1024 <= dataset_size < 31.7 * 1024 + 200


def _start_cli(kafka: str) -> tuple[subprocess.Popen[bytes], list[int]]:
    """`python -m bench.peer` with its four stages running."""
    cli = subprocess.Popen(
        [sys.executable, "-m", "bench.peer", "--bootstrap", kafka],
        cwd=BENCH_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def stages() -> list[int]:
        try:
            children = psutil.Process(cli.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [c.pid for c in children if "bench.peer.stage" in " ".join(c.cmdline())]

    assert _wait(lambda: len(stages()) == STAGES, 120), "stages did not start"
    return cli, stages()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_peer_stops_its_stages_and_deletes_its_topics(kafka: str, sig) -> None:
    before = _peer_topics(kafka)
    cli, stages = _start_cli(kafka)
    assert _wait(lambda: bool(_peer_topics(kafka) - before), 60)
    os.kill(cli.pid, sig)
    _, stderr = cli.communicate(timeout=120)
    assert cli.returncode == 130, stderr.decode()[-2000:]
    assert b"Traceback" not in stderr
    assert all(_gone(pid) for pid in stages)
    assert _wait(lambda: not (_peer_topics(kafka) - before), 30)


def test_stages_stop_by_themselves_when_the_peer_is_killed(kafka: str) -> None:
    before = _peer_topics(kafka)
    cli, stages = _start_cli(kafka)
    cli.kill()
    cli.wait()
    assert _wait(lambda: all(_gone(pid) for pid in stages), 60)
    _peer_topics(kafka, delete=_peer_topics(kafka) - before)  # a killed run cannot do it
