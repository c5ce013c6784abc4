"""`revops run` owns its services: SIGTERM, SIGINT or SIGHUP to it stops every child (before:
SIGTERM left the four services running, re-parented, holding their ports), a child whose
parent was SIGKILLed stops by itself, and a start that finds a port taken says by which
process instead of probing whoever answers there."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from demo.seed import seed_warehouse
from services.common.ports import port_is_free
from services.common.settings import TopicNames
from tests.kafka_broker import free_port_range

pytestmark = pytest.mark.kafka

READY_LINE = "all services ready"


@pytest.fixture(scope="module")
def seeded_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "demo.duckdb"
    seed_warehouse(path, accounts=20, days=120, seed=5)
    return path


def stack_env(kafka: str, tmp_path: Path, warehouse: Path, base_port: int) -> dict[str, str]:
    """A stack of its own: ports, var dir, consumer groups and topics no other test uses."""
    var = tmp_path / "var"
    (var / "warehouse").mkdir(parents=True)
    shutil.copy(warehouse, var / "warehouse" / "demo.duckdb")
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REVOPS_VAR_DIR": str(var),
        "REVOPS_RUN_BASE_PORT": str(base_port),
        "REVOPS_CONSOLE_PORT": str(base_port + 4),
        "REVOPS_CONSUMER_GROUP_PREFIX": f"run-{tag}",
        "REVOPS_TOPIC_PARTITIONS": "2",
    }
    for name in TopicNames.model_fields:
        env[f"REVOPS_TOPIC_{name.upper()}"] = f"run-{tag}.{name}"
    return env


@dataclass
class Run:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY_LINE in line:
                self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def start_run(kafka: str, tmp_path: Path, seeded_warehouse: Path) -> Iterator:
    runs: list[Run] = []

    def start(base_port: int) -> Run:
        env = stack_env(kafka, tmp_path, seeded_warehouse, base_port)
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run", "--timeout", "60"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        run = Run(process)
        threading.Thread(target=run.read, daemon=True).start()
        runs.append(run)
        return run

    yield start
    for run in runs:  # whatever a failing test left behind
        family = _family(run.process.pid)
        for proc in family:
            proc.kill()
        psutil.wait_procs(family, timeout=30)


def _family(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def services_of(run: Run) -> list[psutil.Process]:
    children = psutil.Process(run.process.pid).children(recursive=True)
    services = [
        c
        for c in children
        if any("services." in part for part in c.cmdline())
        # The execution agent's insight export runs in a short-lived child of its own
        # (services.execution_agent.warehouse_export.child) when changes are pending.
        and not any("warehouse_export.child" in part for part in c.cmdline())
    ]
    # the four agents and the console
    assert len(services) == 5, [(c.pid, c.ppid(), c.status(), c.cmdline()) for c in children]
    return services


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=str)
def test_a_stop_signal_to_revops_run_stops_every_service(
    start_run, sig: signal.Signals, tmp_path: Path
) -> None:
    base = free_port_range(5)
    run = start_run(base)
    assert run.ready.wait(240), run.output
    services = services_of(run)
    run.process.send_signal(sig)
    try:
        run.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"revops run still running 120 s after {sig.name}:\n{run.output}")
    _, alive = psutil.wait_procs(services, timeout=60)
    assert not alive, [p.cmdline() for p in alive]
    assert "stopping services" in run.output
    assert all(port_is_free(base + i) for i in range(5))
    # A clean stop says nothing alarming: DuckDB's bindings once reported dozens of "leaked"
    # objects in the data agent's and the console's logs at every stop.
    logs = {p.name: p.read_text() for p in (tmp_path / "var" / "logs").glob("*.log")}
    assert len(logs) == 5, sorted(logs)
    assert not [name for name, text in logs.items() if "leaked" in text], logs


def test_services_stop_by_themselves_when_revops_run_is_killed(start_run) -> None:
    base = free_port_range(5)
    run = start_run(base)
    assert run.ready.wait(240), run.output
    services = services_of(run)
    run.process.kill()  # SIGKILL: no chance to stop its children
    run.process.wait(timeout=30)
    _, alive = psutil.wait_procs(services, timeout=120)
    assert not alive, [p.cmdline() for p in alive]


def test_a_taken_port_is_named_with_its_process_and_nothing_starts(start_run) -> None:
    base = free_port_range(5)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 2))
        squatter.listen()
        run = start_run(base)
        assert run.process.wait(timeout=120) == 1
    time.sleep(0.5)  # the reader thread has the last lines
    assert (
        f"error: port {base + 2} for execution_agent is taken by pid {os.getpid()} (" in run.output
    )
    assert READY_LINE not in run.output
    assert all(port_is_free(base + i) for i in (0, 1, 3)), "no service was started"
