"""Where a service's memory goes (the data agent's unless `--service`): RSS after start-up,
after a warm-up and at saturation.

Run: `.venv/bin/python -m bench.bench_data_agent_memory [--burst N] [--rate PER_S]
[--env KEY=VALUE ...] [--service NAME]`.

A broker of its own (free port, temporary folder: nothing on the fixed ports), the four
services as `make bench` starts them (bench.harness.pipeline), a warm-up of 40 triggers at
10/s, then `--burst` triggers offered at once (the saturation phase of `make bench`), or
at `--rate` per second for a paced load. The service's `/proc/PID/smaps_rollup` is sampled
every 0.1 s; printed per phase: RSS split into anonymous memory (Python's heap, DuckDB's
buffers, thread stacks) and file-backed pages (shared libraries' code: clean pages the
kernel can drop, but RSS counts them), and at the peak the largest mappings from
`/proc/PID/smaps`. `--env` sets a variable for every service
(e.g. `--env MALLOC_ARENA_MAX=8` or `--env REVOPS_WAREHOUSE_MEMORY_LIMIT=256MB` to compare
with the data agent's defaults). Figures vary with the shared box's load: run it 3 times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import threading
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import dedicated_broker, pipeline, trigger_mix
from bench.load import FlowCollector, run_load
from services.common.settings import Settings

DATA_AGENT = "data_agent"


def rollup(pid: int) -> dict[str, int]:
    """smaps_rollup of a process, in kB: Rss, Anonymous and the file-backed rest."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        value = rest.split()
        if value and value[-1] == "kB":
            fields[name] = int(value[0])
    return {
        "rss": fields.get("Rss", 0),
        "anonymous": fields.get("Anonymous", 0),
        "file": fields.get("Rss", 0) - fields.get("Anonymous", 0),
    }


def largest_mappings(pid: int, top: int = 12) -> list[tuple[str, int]]:
    """Resident kB per mapped file (anonymous mappings as [anon]/[heap]), largest first."""
    resident: dict[str, int] = defaultdict(int)
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if not head:
            continue
        if "-" in head[0] and not head[0].endswith(":"):  # a mapping's header line
            name = Path(head[5]).name if len(head) > 5 else "[anon]"
        elif head[0] == "Rss:":
            resident[name] += int(head[1])
    return sorted(resident.items(), key=lambda kv: -kv[1])[:top]


@dataclass
class PeakSampler:
    """A process's largest RSS (and its mappings then), sampled in a thread."""

    pid: int
    period_s: float = 0.1
    peak: dict[str, int] = field(default_factory=lambda: {"rss": 0, "anonymous": 0, "file": 0})
    peak_mappings: list[tuple[str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            with suppress(OSError):
                now = rollup(self.pid)
                if now["rss"] > self.peak["rss"]:
                    self.peak = now
                    self.peak_mappings = largest_mappings(self.pid)

    def __enter__(self) -> PeakSampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def mb(kb: dict[str, int]) -> dict[str, float]:
    return {k: round(v / 1024, 1) for k, v in kb.items()}


async def phases(settings: Settings, pid: int, burst: int, rate: float) -> dict[str, object]:
    collector = FlowCollector(settings)
    await collector.start()
    figures: dict[str, object] = {"after_start_up": mb(rollup(pid))}
    try:
        await run_load(settings, collector, trigger_mix(settings, 40, "warm"), 10)
        figures["after_warm_up"] = mb(rollup(pid))
        with PeakSampler(pid) as sampler:
            result = await run_load(
                settings, collector, trigger_mix(settings, burst, "sat"), rate, 900
            )
        figures["peak_at_saturation"] = mb(sampler.peak)
        figures["after_saturation"] = mb(rollup(pid))
        figures["largest_mappings_at_peak_mb"] = {
            name: round(kb / 1024, 1) for name, kb in sampler.peak_mappings
        }
        figures["saturation_flows_per_s"] = round(result.steady_throughput or result.throughput, 1)
        figures["completed"] = f"{result.completed}/{burst}"
    finally:
        await collector.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=600, help="triggers offered at once")
    parser.add_argument(
        "--rate", type=float, default=5000, help="triggers/s offered (default: all at once)"
    )
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the services")
    parser.add_argument(
        "--service", default=DATA_AGENT, help="the service to sample (data_agent, ...)"
    )
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    work = Path(tempfile.mkdtemp(prefix="revops-bench-memory-"))
    try:
        with (
            dedicated_broker() as broker,
            pipeline(broker.bootstrap, work, extra_env=extra_env) as p,
        ):
            pid = p.pids()[args.service]
            figures = asyncio.run(phases(p.settings, pid, args.burst, args.rate))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["env"] = extra_env
    figures["service"] = args.service
    label = args.service.replace("_", " ")
    for phase in ("after_start_up", "after_warm_up", "peak_at_saturation", "after_saturation"):
        f = figures[phase]
        assert isinstance(f, dict)
        print(f"{label} RSS {phase}: {f['rss']} MB (anon {f['anonymous']}, file {f['file']})")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
