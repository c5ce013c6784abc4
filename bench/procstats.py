"""CPU seconds, peak RSS and the machine, for benchmarks: no imports from the product (the
bare-pipeline peer in bench/peer measures itself with it too).
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class ProcessUsage:
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    # Of cpu_s, what the process's finished children used (the execution agent's insight
    # export child): a phase that reaps one carries the CPU of the whole run of the child.
    children_cpu_s: float = 0.0


@dataclass
class ResourceSampler:
    """CPU seconds and peak RSS per named process, sampled in a thread every `period_s`.
    A process that is replaced (restarted) keeps accumulating under its name."""

    pids: dict[str, int]
    period_s: float = 0.25
    usage: dict[str, ProcessUsage] = field(default_factory=dict)
    _base: dict[int, float] = field(default_factory=dict)
    _children_base: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> dict[str, float]:
        """CPU seconds per name so far, sampled now (the difference of two snapshots is what
        one phase of a run cost)."""
        self._sample()
        return {name: u.cpu_s for name, u in self.usage.items()}

    def children_snapshot(self) -> dict[str, float]:
        """Of `snapshot`, the CPU seconds of each name's finished children (as of the last
        sample: take it right after `snapshot`)."""
        with self._lock:
            return {name: u.children_cpu_s for name, u in self.usage.items()}

    def _sample(self) -> None:
        with self._lock:  # the sampling thread and snapshot() share the baselines
            self._sample_locked()

    def _sample_locked(self) -> None:
        for name, pid in list(self.pids.items()):
            try:
                proc = psutil.Process(pid)
                times = proc.cpu_times()
                # With the children it has waited for: the execution agent's insight export
                # runs in a child process, whose CPU is the agent's work (counted once the
                # child has exited).
                children = times.children_user + times.children_system
                cpu = times.user + times.system + children
                rss = proc.memory_info().rss / 2**20
            except psutil.Error:
                continue
            base = self._base.setdefault(pid, cpu)
            u = self.usage.setdefault(name, ProcessUsage())
            u.cpu_s = round(u.cpu_s + (cpu - base), 3)
            self._base[pid] = cpu
            children_base = self._children_base.setdefault(pid, children)
            u.children_cpu_s = round(u.children_cpu_s + (children - children_base), 3)
            self._children_base[pid] = children
            u.peak_rss_mb = round(max(u.peak_rss_mb, rss), 1)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def __enter__(self) -> ResourceSampler:
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample()


def jit_cpu_s(pid: int) -> float:
    """CPU seconds a JVM's JIT compiler threads (C1, C2) used so far; 0.0 where /proc does
    not say. A broker started for a run compiles Kafka's hot paths during its first minutes
    of load: a one-off cost that a broker running for days does not pay per record."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError, IndexError, ValueError):
            if not (task / "comm").read_text().startswith(("C1 Compiler", "C2 Compiler")):
                continue
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return round(total, 3)


def machine_info() -> dict[str, object]:
    cpu_model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "cpu_model": cpu_model,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": sys.platform,
    }


def broker_pid(bootstrap: str) -> int | None:
    """The process listening on the bootstrap port (the broker shares this machine's CPUs,
    so its CPU belongs in the figures); None when it is remote or not found."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", ""):
        return None
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == int(port):
            return conn.pid
    return None
