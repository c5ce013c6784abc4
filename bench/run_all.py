"""`make bench`: the whole pipeline under load on this machine, plus every area benchmark.

    .venv/bin/python -m bench.run_all [--full] [--profile] [--skip-areas]

Every service runs as its own process against the local broker (`deploy/kafka/kafka.sh up`
on the default port, or REVOPS_KAFKA_BOOTSTRAP_SERVERS), the loopback sink stands in for
every webhook destination, and the run gets topics of its own. Measured:
  - sustained end-to-end throughput (flows/s) of a deal-quality / consumption mix,
  - latency p50/p95/p99 (trigger publish -> flow output) at 10/50/90 % of it and at
    50 flows/s,
  - the runtime's per-message overhead (bench.overhead),
  - CPU seconds and peak RSS per service (psutil), the scale-out check,
  - the same figures of a bare four-stage Kafka pipeline on the same broker (bench/peer),
  - the figures of the area benchmarks (bench/bench_*.py, small sizes; --full: the issue's).
Prints a table and writes bench/results.json (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.comparison import product_shape_rows, project_headline, target_rows
from bench.harness import (
    KAFKA_SH,
    Pipeline,
    ResourceSampler,
    batch_counters,
    machine_info,
    pipeline,
    records_per_batch,
    trigger_mix,
)
from bench.load import FlowCollector, LoadResult, run_load
from bench.overhead import measure as measure_overhead
from bench.peer import PeerSizes, PlannedPhase, run_peer
from bench.procstats import broker_pid, jit_cpu_s
from bench.scale_out import run_scale_out
from contracts import RawTrigger
from services.common.settings import PROJECT_ROOT

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results.json"
TARGETS = {
    "sustained_flows_per_s": ">= 1000",
    "p99_ms_at_500_flows_per_s": "< 100",
    "p50_ms_at_50_flows_per_s": "< 15",
    "rss_mb_per_service": "< 150",
}


def area_benches(full: bool, work: Path) -> dict[str, list[str]]:
    """Command lines of the other engineers' benchmarks: small by default, the issue's
    sizes with --full (their own defaults)."""
    small = not full
    return {
        "warehouse": ["bench_warehouse.py", "--dir", str(work / "wh")]
        + (["--accounts", "2000", "--screen", "2000"] if small else []),
        "deal_scoring": ["bench_deal_scoring.py"]
        + (["--accounts", "60", "--rounds", "2"] if small else []),
        "consumption": ["bench_consumption.py"] + (["--accounts", "1000"] if small else []),
        "anomaly": ["bench_anomaly.py"] + (["--generator-accounts", "60"] if small else []),
        "deliveries": ["bench_deliveries.py"] + (["--jobs", "500"] if small else []),
        # the same to a destination named, not numbered: the egress check has a name to resolve
        "deliveries_by_name": ["bench_deliveries.py", "--host", "localhost"]
        + (["--jobs", "500"] if small else []),
        # CPU per flow of the operational store, SQLite against PostgreSQL (a throwaway server)
        "stores": ["bench_stores.py"] + (["--flows", "100"] if small else []),
        "signing": ["bench_signing.py"] + (["--messages", "500"] if small else []),
        "batch_signing": ["bench_batch_signing.py"] + (["--records", "500"] if small else []),
        # bytes and parse + read per hop of a dataset, row form against columnar form
        "dataset_wire": ["bench_dataset_wire.py"]
        + (["--accounts", "10", "--deals", "10"] if small else []),
        # CPU per flow of the data, decision and execution agents in process (no Kafka)
        "flow_cpu": ["bench_flow_cpu.py"]
        + (["--accounts", "300", "--flows", "200", "--repeats", "2"] if small else []),
        # the data agent's RSS after start-up, warm-up and at saturation (a broker of its own)
        "data_agent_memory": ["bench_data_agent_memory.py"] + (["--burst", "300"] if small else []),
        "ai_layer": ["bench_ai_layer.py"] + (["--deals", "20"] if small else []),
        # the size even in the small run: import rows/s at 1,000,000 opportunities
        "import": ["bench_import.py", "--dir", str(work / "import"), "--opportunities", "1000000"],
        # CPU of one insight-export run per change (the execution agent's minute job)
        "insight_export": ["bench_insight_export.py"]
        + (["--insights", "100", "--reruns", "20"] if small else []),
        "backtest": ["bench_backtest.py"] + (["--accounts", "300"] if small else []),
        # Always the size (100,000 insights and accounts, about two minutes).
        "console": ["bench_console.py", "--dir", str(work / "console")]
        + (["--repeats", "9"] if small else []),
        "cli": ["bench_cli.py"] + (["--runs", "10"] if small else []),
    }


_NUMBER_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*([-\d.,]+)\s*(.*)$")


def parse_printed(text: str) -> dict[str, Any]:
    """JSON lines as they are; `label: 1,234 unit` lines as {label: {value, unit}}."""
    figures: dict[str, Any] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                figures.update(json.loads(line))
                continue
            except ValueError:
                pass
        m = _NUMBER_LINE.match(line)
        if m:
            try:
                value = float(m.group(2).replace(",", ""))
            except ValueError:
                continue
            figures[m.group(1)] = {"value": value, "unit": m.group(3)}
    return figures


def area_command(argv: Sequence[str]) -> list[str]:
    """`python -m bench.<script>`, run from the project root, as the docs show them: run as
    a file, a script that imports `bench.` finds no such package."""
    return [sys.executable, "-m", f"bench.{Path(argv[0]).stem}", *argv[1:]]


def run_area_benches(full: bool, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, argv in area_benches(full, work).items():
        started = time.monotonic()
        command = area_command(argv)
        proc = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=3600
        )
        out[name] = {
            "command": " ".join(["python", *command[1:]]),
            "exit_code": proc.returncode,
            "seconds": round(time.monotonic() - started, 1),
            "printed": proc.stdout.strip().splitlines()[-20:],
            "table": [line for line in proc.stdout.splitlines() if line.startswith("|")],
            "figures": parse_printed(proc.stdout),
        }
        print(f"  {name}: exit {proc.returncode} in {out[name]['seconds']} s", flush=True)
        if proc.returncode != 0:
            out[name]["stderr"] = proc.stderr.strip().splitlines()[-20:]
            print("\n".join(f"    {line}" for line in out[name]["stderr"]), flush=True)
    return out


def failed_areas(results: dict[str, Any]) -> list[str]:
    return [name for name, area in results.get("areas", {}).items() if area["exit_code"] != 0]


def ensure_broker() -> str:
    bootstrap = os.environ.get("REVOPS_KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        return bootstrap
    subprocess.run([str(KAFKA_SH), "up"], check=True, cwd=PROJECT_ROOT)
    return "127.0.0.1:19092"


# The peer's phases, shortened: enough produce, fetch and commit traffic for the broker's
# JIT compiler to compile their paths, a few seconds on this box.
# The saturation burst's offered rate: above anything this box carries, so the triggers are in
# the topic at once and the pipeline works through a backlog.
BURST_RATE = 5000

BROKER_WARMUP = PeerSizes(
    burst_2kb=3000, burst_20kb=300, latency_s=2.0, warmup=300, burst_product_shape=0
)
# Warm-up rounds are repeated until the JIT compiler used less than this share of a round's
# time. One round was not enough: a broker started for the run compiled for 5.2, 3.5, 0.9,
# 0.45 and 0.34 CPU s in rounds of 7-9 s. After one round the project's saturation burst
# cost the broker 4.8 ms per flow and the measured capacity was 139.9 flows/s (every rate
# derived from it lower too); after four, 1.7 ms and 214.0 flows/s.
JIT_SETTLED_SHARE = 0.10
WARMUP_MAX_ROUNDS = 6


def warm_until_settled(
    run_round: Callable[[], object],
    jit_s: Callable[[], float],
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, float]:
    """Run warm-up rounds until one leaves the JIT compiler under `JIT_SETTLED_SHARE` of
    the round's time (at most `WARMUP_MAX_ROUNDS`); what they took, in all."""
    started, jit_start, rounds = clock(), jit_s(), 0
    while rounds < WARMUP_MAX_ROUNDS:
        round_started, jit_before = clock(), jit_s()
        run_round()
        rounds += 1
        if jit_s() - jit_before < JIT_SETTLED_SHARE * (clock() - round_started):
            break
    return {
        "seconds": round(clock() - started, 1),
        "rounds": rounds,
        "jit_cpu_s": round(jit_s() - jit_start, 2),
    }


def warm_broker(bootstrap: str) -> dict[str, float]:
    """Run a short bare pipeline on the broker until its JIT compiler settles, and discard
    its figures.

    A broker started for the run compiles Kafka's hot paths (C1/C2 JIT) during its first
    minutes of load. Whichever pipeline ran first would pay that one-off cost per flow,
    and a broker that has been running for days does not pay it at all. Both pipelines
    are therefore measured on a warmed broker. The JIT CPU that is still spent while the
    project runs is printed beside the broker's figure.
    """
    broker = broker_pid(bootstrap)

    def jit_s() -> float:
        return jit_cpu_s(broker) if broker is not None else 0.0

    return warm_until_settled(lambda: run_peer(bootstrap, BROKER_WARMUP), jit_s)


def py_spy_profile(pid: int, seconds: int, out: Path) -> list[tuple[str, float]]:
    """Top self-time frames of one process (py-spy, raw collapsed stacks); [] without it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return []
    raw = out.with_suffix(".folded")
    subprocess.run(
        [
            spy,
            "record",
            "-p",
            str(pid),
            "-d",
            str(seconds),
            "-r",
            "50",
            "-f",
            "raw",
            "-o",
            str(raw),
        ],
        capture_output=True,
        timeout=seconds + 60,
    )
    leaves: Counter[str] = Counter()
    total = 0
    if raw.exists():
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            n = int(count)
            total += n
            frames = stack.split(";")
            # the first frame of our code or a library below the event loop, leaf-most
            leaves[frames[-1]] += n
    return [(frame, round(100 * n / max(total, 1), 1)) for frame, n in leaves.most_common(12)]


def phase_cpu(before: dict[str, float], after: dict[str, float], flows: int) -> dict[str, float]:
    """CPU ms per flow of each process during one phase (two `ResourceSampler` snapshots)."""
    return {
        name: round((after[name] - before.get(name, 0.0)) * 1000 / max(flows, 1), 1)
        for name in after
    }


def per_process(cpu_ms_per_flow: dict[str, float], children: dict[str, float] | None = None) -> str:
    """`"13.5 (data_agent 2.0, ...)"`: the total of a phase's CPU per flow, then each process,
    with what its children that finished in the phase used (`children`, included)."""
    children = children or {}
    parts = ", ".join(
        f"{k} {v}" + (f" of which finished children {children[k]}" if children.get(k) else "")
        for k, v in cpu_ms_per_flow.items()
    )
    return f"{round(sum(cpu_ms_per_flow.values()), 1)} ({parts})"


def cores_used(cpu_ms_per_flow: dict[str, float], flows_per_s: float) -> float:
    """Cores a rate of flows keeps busy at this CPU per flow (near the box's count, it queues)."""
    return sum(cpu_ms_per_flow.values()) * flows_per_s / 1000


def load_phase(name: str, loaded: LoadResult, cpu_key: str) -> dict[str, Any]:
    """One load phase of the run: what it offered, what completed, where its CPU is kept."""
    rate = None if loaded.offered_rate >= BURST_RATE else round(loaded.offered_rate, 2)
    return {
        "name": name,
        "flows": loaded.triggers,
        "rate": rate,
        "completed": loaded.completed,
        "cpu_key": cpu_key,
    }


def replay_plan(pipe: dict[str, Any]) -> list[PlannedPhase]:
    """The run's load phases as the bare pipeline of the flow is to be offered them."""
    return [PlannedPhase(p["name"], p["flows"], p["rate"]) for p in pipe.get("load_phases", [])]


async def pipeline_figures(
    p: Pipeline, full: bool, profile: bool, work: Path, sampler: ResourceSampler | None = None
) -> dict[str, Any]:
    settings = p.settings
    collector = FlowCollector(settings)
    await collector.start()
    results: dict[str, Any] = {}
    # The load phases, in order, for the bare pipeline of the flow to replay (bench/peer).
    load_phases: list[dict[str, Any]] = []
    results["load_phases"] = load_phases

    async def load_with_cpu(
        phase: str, key: str, triggers: list[RawTrigger], rate: float, drain_s: float
    ) -> LoadResult:
        """`run_load`, with each process's CPU per flow over it kept under `key`, and the
        phase listed in `load_phases`."""
        before = sampler.snapshot() if sampler else {}
        children_before = sampler.children_snapshot() if sampler else {}
        loaded = await run_load(settings, collector, triggers, rate, drain_s)
        if sampler is not None:
            results[key] = phase_cpu(before, sampler.snapshot(), loaded.completed)
            children = phase_cpu(children_before, sampler.children_snapshot(), loaded.completed)
            results[f"{key}_children"] = {k: v for k, v in children.items() if v}
        load_phases.append(load_phase(phase, loaded, key))
        return loaded

    try:
        print("warm-up ...", flush=True)
        await run_load(settings, collector, trigger_mix(settings, 40, "warm"), 10)

        print("single flows (one at a time) ...", flush=True)
        single = []
        for i in range(10):
            r = await run_load(settings, collector, trigger_mix(settings, 1, f"one{i}"), 1)
            single.append(r.latency_ms["p50"])
        results["unloaded_single_flow_latency_ms"] = sorted(single)[len(single) // 2]

        burst_n = 3000 if full else 600
        print(f"saturation: {burst_n} triggers offered at once ...", flush=True)
        profiles: dict[str, Any] = {}
        profile_task = None
        if profile:
            profile_task = asyncio.gather(
                *(
                    asyncio.to_thread(py_spy_profile, pid, 15, work / f"profile-{name}")
                    for name, pid in p.pids().items()
                )
            )
        # Per flow in large batches: what a backlog (a morning re-score) costs.
        saturation = await load_with_cpu(
            "saturation",
            "cpu_ms_per_flow_at_saturation",
            trigger_mix(settings, burst_n, "sat"),
            BURST_RATE,
            1800,
        )
        if profile_task is not None:
            for name, top in zip(p.pids(), await profile_task, strict=True):
                profiles[name] = top
        results["saturation"] = saturation.as_dict()
        capacity = saturation.steady_throughput or saturation.throughput
        results["sustained_flows_per_s"] = round(capacity, 1)

        duration = 60 if full else 20
        latency: dict[str, Any] = {}
        for share in (0.1, 0.5, 0.9):
            rate = max(0.5, capacity * share)
            n = max(5, int(rate * duration))
            print(f"latency at {share:.0%} of capacity ({rate:.1f} flows/s, {n}) ...", flush=True)
            name = f"{int(share * 100)}%"
            r = await load_with_cpu(
                name,
                f"cpu_ms_per_flow_at_{name}_of_capacity",
                trigger_mix(settings, n, f"lat{share}"),
                rate,
                900,
            )
            latency[name] = r.as_dict()
        results["latency_at_share_of_capacity"] = latency

        light_s = 30 if full else 10
        print(f"light load: 50 flows/s for {light_s} s ...", flush=True)
        counted = batch_counters(p)
        # Per flow in batches of a few records: how much of the box 50 flows/s takes.
        light = await load_with_cpu(
            "50 flows/s",
            "cpu_ms_per_flow_at_50_flows_per_s",
            trigger_mix(settings, 50 * light_s, "light"),
            50,
            1200,
        )
        results["latency_at_50_flows_per_s"] = light.as_dict()
        # Why light load costs more per flow: each batch pays its fixed costs alone.
        results["records_per_batch_at_50_flows_per_s"] = records_per_batch(
            counted, batch_counters(p)
        )
        if capacity >= 500:
            r500 = await run_load(
                settings, collector, trigger_mix(settings, 500 * 20, "r500"), 500, 600
            )
            results["latency_at_500_flows_per_s"] = r500.as_dict()
        else:
            results["latency_at_500_flows_per_s"] = (
                f"not measurable: capacity is {capacity:.1f} flows/s (< 500)"
            )
        if profiles:
            results["py_spy_top_self_frames_pct"] = profiles
        results["flows_completed"] = len(collector.seen)
    finally:
        await collector.stop()
    return results


# The project's phases and the peer's that offer the same kind of load: a burst offered at
# once (the peer's with 20 KB records, the size of the project's datasets and decisions), and
# 50 flows/s (the peer's only light phase: 2 KB records).
LIKE_FOR_LIKE_PHASES = (
    ("in a burst offered at once", "cpu_ms_per_flow_at_saturation", "sustained_20kb"),
    ("at 50 flows/s", "cpu_ms_per_flow_at_50_flows_per_s", "latency_at_50_flows_per_s"),
)


def like_for_like_cpu_rows(
    pipe: dict[str, Any], peer: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """CPU per flow of the project and of the peer in the same kind of phase. The whole-run
    figures do not compare like with like: the peer's run is mostly bursts and a
    half-capacity phase of ~1,700 flows/s (large batches), the project's mostly phases of
    tens of flows per second (batches of one), where each record pays a batch's fixed costs
    (the peer's own CPU per flow at 50 flows/s is ~20x its 2 KB burst figure)."""
    rows = []
    for label, ours, theirs in LIKE_FOR_LIKE_PHASES:
        project_ms = sum(pipe.get(ours, {}).values())
        phase = peer.get("phases", {}).get(theirs)
        if not project_ms or not phase:
            continue
        peer_ms = sum(phase["cpu_ms_per_flow"].values())
        rows.append(
            (
                f"CPU ms per flow {label}, project vs peer",
                f"{project_ms:.1f} vs {peer_ms:.1f} = {project_ms / peer_ms:.1f}x",
                "same kind of phase, all processes",
            )
        )
    return rows


def peer_rows(peer: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The bare pipeline's figures (bench/peer), beside the project's."""
    h = peer["headline"]
    cpu = peer["cpu_ms_per_flow"]
    return [
        (
            "peer: sustained 2 KB / 20 KB records (flows/s)",
            f"{h['sustained_flows_per_s']} / {h['sustained_flows_per_s_20kb']}",
            "",
        ),
        (
            "peer: latency at 50 flows/s p50/p99 ms",
            f"{h['p50_ms_at_50_flows_per_s']}/{h['p99_ms_at_50_flows_per_s']}",
            "",
        ),
        (
            "peer: latency at half capacity p50/p99 ms",
            f"{h['p50_ms_at_half_capacity']}/{h['p99_ms_at_half_capacity']}",
            "",
        ),
        (
            "peer: CPU ms per flow, all processes",
            f"{h['cpu_ms_per_flow']} ({', '.join(f'{k} {v}' for k, v in cpu.items())})",
            "",
        ),
        ("peer: peak RSS MB per stage", str(h["peak_rss_mb_per_service"]), ""),
    ]


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str]] = []
    pipe = results["pipeline"]
    rows.append(
        (
            "sustained throughput (flows/s)",
            str(pipe["sustained_flows_per_s"]),
            TARGETS["sustained_flows_per_s"],
        )
    )
    rows.append(
        ("single flow, unloaded p50 (ms)", str(pipe["unloaded_single_flow_latency_ms"]), "")
    )
    for share, r in pipe["latency_at_share_of_capacity"].items():
        lat = r["latency_ms"]
        rows.append(
            (
                f"latency at {share} ({r['offered_rate']:.1f}/s) p50/p95/p99 ms",
                f"{lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')}",
                "",
            )
        )
    light = pipe["latency_at_50_flows_per_s"]["latency_ms"]
    rows.append(
        (
            "latency at 50 flows/s p50/p95/p99 ms",
            f"{light.get('p50')}/{light.get('p95')}/{light.get('p99')}",
            "p50 " + TARGETS["p50_ms_at_50_flows_per_s"],
        )
    )
    per_batch = pipe.get("records_per_batch_at_50_flows_per_s")
    if per_batch:
        rows.append(
            (
                "records per consumed batch at 50 flows/s",
                ", ".join(f"{k} {v}" for k, v in per_batch.items()),
                "each batch pays its fixed costs",
            )
        )
    r500 = pipe["latency_at_500_flows_per_s"]
    rows.append(
        (
            "latency at 500 flows/s p99 ms",
            r500 if isinstance(r500, str) else str(r500["latency_ms"].get("p99")),
            TARGETS["p99_ms_at_500_flows_per_s"],
        )
    )
    per_flow = results.get("cpu_ms_per_flow", {})
    for name, u in results["resources"].items():
        rows.append(
            (
                f"{name}: CPU s (ms per flow) / peak RSS MB",
                f"{u['cpu_s']} ({per_flow.get(name, '?')}) / {u['peak_rss_mb']}",
                "" if name == "kafka_broker" else "RSS " + TARGETS["rss_mb_per_service"],
            )
        )
    if "kafka_broker_jit_cpu_ms_per_flow" in results:
        rows.append(
            (
                "kafka_broker: of which JIT compiler, ms per flow",
                str(results["kafka_broker_jit_cpu_ms_per_flow"]),
                "still compiling after the warm-up",
            )
        )
    warmup = results.get("broker_warmup")
    if warmup:
        rows.append(
            (
                "kafka_broker: warm-up before measuring",
                f"{warmup['seconds']} s in {warmup.get('rounds', 1)} round(s), "
                f"JIT {warmup['jit_cpu_s']} CPU s",
                "figures discarded",
            )
        )
    if per_flow:
        rows.append(("CPU ms per flow, all processes", str(round(sum(per_flow.values()), 1)), ""))
    saturated = pipe.get("cpu_ms_per_flow_at_saturation")
    if saturated:
        rows.append(
            (
                "CPU ms per flow during the saturation burst",
                per_process(saturated, pipe.get("cpu_ms_per_flow_at_saturation_children")),
                "large batches; the rest of the run is light load",
            )
        )
    light_cpu = pipe.get("cpu_ms_per_flow_at_50_flows_per_s")
    if light_cpu:
        rows.append(
            (
                "CPU ms per flow during the 50 flows/s phase",
                per_process(light_cpu, pipe.get("cpu_ms_per_flow_at_50_flows_per_s_children")),
                f"{cores_used(light_cpu, 50):.2f} of {os.cpu_count()} cores at 50 flows/s",
            )
        )
    rows.extend(peer_rows(results["peer"]))
    rows.extend(like_for_like_cpu_rows(pipe, results["peer"]))
    project, peer = project_headline(results), results["peer"]["headline"]
    rows.extend(target_rows(project, peer))
    rows.extend(product_shape_rows(project, peer))
    for key, value in results["runtime_overhead_us"].items():
        rows.append((f"runtime overhead {key}", str(value), ""))
    so = results.get("scale_out")
    if so:
        rows.append(
            (
                "scale-out consumed per replica",
                json.dumps(so["consumed_per_replica_before_kill"]),
                "",
            )
        )
        rows.append(
            ("scale-out completed after a kill", f"{so['completed']}/{so['triggers']}", "all")
        )
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'measure'.ljust(width)}  {'value':<40}  target")
    for label, value, target in rows:
        print(f"{label.ljust(width)}  {value:<40}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the issue's sizes (long)")
    parser.add_argument("--profile", action="store_true", help="py-spy every service")
    parser.add_argument("--skip-areas", action="store_true", help="only the pipeline")
    parser.add_argument(
        "--cold-broker",
        action="store_true",
        help="measure the project on the broker as it is (no warm-up run before it)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine_info(), "targets": TARGETS, "full": args.full}
    bootstrap = ensure_broker()
    work = Path(tempfile.mkdtemp(prefix="revops-bench-"))
    if not args.cold_broker:
        print(
            "broker warm-up (short bare pipelines until its JIT compiler settles, figures "
            "discarded) ...",
            flush=True,
        )
        results["broker_warmup"] = warm_broker(bootstrap)
    print(f"pipeline on {bootstrap}, state in {work}", flush=True)
    with pipeline(bootstrap, work) as p:
        processes = dict(p.pids())
        broker = broker_pid(bootstrap)
        if broker is not None:
            processes["kafka_broker"] = broker
        jit_before = jit_cpu_s(broker) if broker is not None else 0.0
        with ResourceSampler(processes) as sampler:
            results["pipeline"] = asyncio.run(
                pipeline_figures(p, args.full, args.profile, work, sampler)
            )
        results["resources"] = {k: vars(v) for k, v in sampler.usage.items()}
        flows = results["pipeline"]["flows_completed"]
        results["cpu_ms_per_flow"] = {
            name: round(u.cpu_s * 1000 / max(flows, 1), 1) for name, u in sampler.usage.items()
        }
        if broker is not None:  # part of kafka_broker's figure, shown beside it
            jit = jit_cpu_s(broker) - jit_before
            results["kafka_broker_jit_cpu_ms_per_flow"] = round(jit * 1000 / max(flows, 1), 1)
        print("scale-out check (3 decision agents, one killed) ...", flush=True)
        results["scale_out"] = asyncio.run(run_scale_out(p, triggers=150, rate=12)).as_dict()
    # The yardstick, on the same broker, after the project's services have stopped.
    print("bare four-stage pipeline (bench/peer) ...", flush=True)
    results["peer"] = run_peer(
        bootstrap,
        PeerSizes.full() if args.full else PeerSizes(),
        replay=replay_plan(results["pipeline"]),
    )
    results["headline"] = project_headline(results)
    print("runtime overhead micro-benchmark ...", flush=True)
    results["runtime_overhead_us"] = asyncio.run(measure_overhead(bootstrap))
    if not args.skip_areas:
        print("area benchmarks ...", flush=True)
        results["areas"] = run_area_benches(args.full, work)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.monotonic() - started, 1)
    results["run_id"] = uuid.uuid4().hex[:8]
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print_table(results)
    for name, area in results.get("areas", {}).items():
        if area.get("table"):
            print(f"\n{name} ({area['command']}):")
            print("\n".join(area["table"]))
    print(f"\nwrote {args.out}")
    if failed := failed_areas(results):
        raise SystemExit(f"area benchmarks failed (their stderr is above): {', '.join(failed)}")


if __name__ == "__main__":
    main()
