"""The project's figures beside the bare pipeline's (bench/peer), and issue 15's targets.

`make bench` measures both in one run on the same broker; the peer's figures move 2-3x between
runs on a shared machine, so the targets that are ratios are only checked within one run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.peer import cpu_over, ratios


def project_headline(results: Mapping[str, Any]) -> dict[str, float]:
    """The project's figures under the names `bench.peer.headline` uses for the peer's."""
    pipe = results["pipeline"]
    light = pipe["latency_at_50_flows_per_s"]["latency_ms"]
    half = pipe["latency_at_share_of_capacity"].get("50%", {}).get("latency_ms", {})
    services = {k: v for k, v in results["resources"].items() if k != "kafka_broker"}
    burst_cpu = sum(pipe.get("cpu_ms_per_flow_at_saturation", {}).values())
    light_cpu = sum(pipe.get("cpu_ms_per_flow_at_50_flows_per_s", {}).values())
    phases = pipe.get("load_phases", [])
    return {
        "sustained_flows_per_s": float(pipe["sustained_flows_per_s"]),
        "cpu_ms_per_flow_in_burst": round(burst_cpu, 2) or math.nan,
        "cpu_ms_per_flow_at_50_flows_per_s": round(light_cpu, 2) or math.nan,
        "cpu_ms_per_flow_over_the_load_phases": cpu_over(
            [(pipe[p["cpu_key"]], p["completed"]) for p in phases if p["cpu_key"] in pipe]
        ),
        "p50_ms_at_50_flows_per_s": light.get("p50", math.nan),
        "p99_ms_at_50_flows_per_s": light.get("p99", math.nan),
        "p50_ms_at_half_capacity": half.get("p50", math.nan),
        "p99_ms_at_half_capacity": half.get("p99", math.nan),
        "cpu_ms_per_flow": round(sum(results.get("cpu_ms_per_flow", {}).values()), 2),
        "peak_rss_mb_per_service": max(
            (float(u["peak_rss_mb"]) for u in services.values()), default=math.nan
        ),
    }


@dataclass(frozen=True)
class Target:
    """One of issue 15's targets: a figure of the project (or its ratio to the peer's)."""

    label: str
    figure: str
    relative: bool  # compared as project / peer (same run) rather than as an absolute value
    wanted: str
    met: Callable[[float], bool]


TARGETS = (
    Target(
        "sustained throughput", "sustained_flows_per_s", True, ">= 0.5x peer", lambda r: r >= 0.5
    ),
    Target("CPU per flow, all processes", "cpu_ms_per_flow", False, "<= 5 ms", lambda v: v <= 5),
    Target("p50 at 50 flows/s", "p50_ms_at_50_flows_per_s", True, "<= 2x peer", lambda r: r <= 2),
    Target("p99 at half capacity", "p99_ms_at_half_capacity", False, "< 250 ms", lambda v: v < 250),
    Target("peak RSS per service", "peak_rss_mb_per_service", False, "< 150 MB", lambda v: v < 150),
)


def target_rows(
    project: Mapping[str, float], peer: Mapping[str, float]
) -> list[tuple[str, str, str]]:
    """(label, "project vs peer (= ratio)", "wanted: met|MISSED") per target."""
    relative = ratios(project, peer)
    rows = []
    for t in TARGETS:
        mine, theirs = project.get(t.figure, math.nan), peer.get(t.figure, math.nan)
        checked = relative.get(t.figure, math.nan) if t.relative else mine
        verdict = "met" if math.isfinite(checked) and t.met(checked) else "MISSED"
        ratio = relative.get(t.figure)
        shown = f"{mine:,.1f} vs peer {theirs:,.1f}" + (f" = {ratio:.2f}x" if ratio else "")
        rows.append((f"issue 15: {t.label}", shown, f"{t.wanted}: {verdict}"))
    return rows


# The peer of the product's shape (bench/peer/shape.py: the project's flow, records and sizes,
# with nothing but the transport), figure by figure: (label, the project's figure, the peer's).
# "Over the run's load phases" and "at the project's half capacity": the project's load phases
# (burst, 10/50/90 % of its capacity, 50 flows/s) offered again to the bare pipeline at the same
# rates and sizes, like with like for the run's figures.
PRODUCT_SHAPE_FIGURES = (
    (
        "sustained throughput, flows/s",
        "sustained_flows_per_s",
        "sustained_flows_per_s_product_shape",
    ),
    (
        "p50 at 50 flows/s, ms",
        "p50_ms_at_50_flows_per_s",
        "p50_ms_at_50_flows_per_s_product_shape",
    ),
    (
        "CPU per flow in a burst, ms",
        "cpu_ms_per_flow_in_burst",
        "cpu_ms_per_flow_in_burst_product_shape",
    ),
    (
        "CPU per flow at 50 flows/s, ms",
        "cpu_ms_per_flow_at_50_flows_per_s",
        "cpu_ms_per_flow_at_50_flows_per_s_product_shape",
    ),
    (
        "CPU per flow over the run's load phases, ms",
        "cpu_ms_per_flow_over_the_load_phases",
        "cpu_ms_per_flow_over_the_load_phases_product_shape",
    ),
    (
        "p99 at the project's half capacity, ms",
        "p99_ms_at_half_capacity",
        "p99_ms_at_half_capacity_product_shape",
    ),
)


def product_shape_rows(
    project: Mapping[str, float], peer: Mapping[str, float]
) -> list[tuple[str, str, str]]:
    """The project against the bare pipeline of its own flow (what its own work costs), and
    that pipeline's throughput against the four-stage peer the targets name (what the flow's
    records and hops cost before any work). Empty when the peer did not run that shape."""
    shaped = peer.get("sustained_flows_per_s_product_shape", math.nan)
    four_stages = peer.get("sustained_flows_per_s", math.nan)
    if not (math.isfinite(shaped) and shaped > 0):
        return []
    rows = [
        (
            "peer of the product's flow: sustained vs the 2 KB peer",
            f"{shaped:,.1f} vs {four_stages:,.1f} = {shaped / four_stages:.2f}x",
            "the most any implementation of the flow carries here",
        )
    ]
    for label, mine, theirs in PRODUCT_SHAPE_FIGURES:
        ours, bare = project.get(mine, math.nan), peer.get(theirs, math.nan)
        ratio = ratios({"x": ours}, {"x": bare}).get("x")
        rows.append(
            (
                f"project vs peer of its flow: {label}",
                f"{ours:,.1f} vs {bare:,.1f}" + (f" = {ratio:.2f}x" if ratio is not None else ""),
                "what the project's own work costs",
            )
        )
    return rows
