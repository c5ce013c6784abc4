"""What the end-to-end bench and the chaos runs share: a local broker they can restart, an
isolated pipeline (own topics, own state folder, every service its own process, the HTTP
sink as every destination), the trigger mix, and resource sampling of the processes.

Each run gets topics of its own (`REVOPS_TOPIC_*` with a run prefix), so a broker that
already holds other runs' records (or `make run`'s) never feeds this run stale input. The
run deletes them when it ends: on the long-lived broker of `make kafka-up`, runs would
otherwise pile up hundreds of topics, and every client that asks for the whole cluster's
metadata pays for each of them (660 topics: ~54 ms of client CPU per request).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.procstats import ProcessUsage, ResourceSampler, machine_info
from bench.sink import SinkClient, free_port
from contracts import AnalysisType, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from demo.seed import seed_warehouse
from services.cli.orchestrator import SERVICES, LocalStack
from services.common.settings import PROJECT_ROOT, Settings, TopicNames
from services.common.topics import delete_topics, ensure_topics
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.queries import LIST_ACCOUNTS, LIST_OPEN_OPPORTUNITIES

# Resource sampling lives in bench.procstats (no product imports, so the bare-pipeline peer
# uses it too); re-exported here for the bench and chaos code that imports it from here.
__all__ = ["ProcessUsage", "ResourceSampler", "machine_info"]

KAFKA_SH = PROJECT_ROOT / "deploy" / "kafka" / "kafka.sh"
CHAOS_WEBHOOKS = Path(__file__).with_name("webhooks.chaos.yaml")
TOPIC_FIELDS = ("triggers", "datasets", "decisions", "actions", "action_results", "flow_results")


# --- broker ---------------------------------------------------------------------------------


class LocalBroker:
    """The project's jar broker (deploy/kafka/kafka.sh) on a given port and data folder;
    `restart()` keeps both, so committed offsets and records survive it."""

    def __init__(self, port: int, data_dir: Path, *, owned: bool = True) -> None:
        self.port = port
        self.data_dir = data_dir
        self.owned = owned  # False: someone else's broker, never stopped or restarted
        self._env = {
            **os.environ,
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(free_port() if owned else port + 1),
            "KAFKA_DATA_DIR": str(data_dir),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, verb: str) -> None:
        subprocess.run(
            [str(KAFKA_SH), verb],
            check=verb != "down",
            env=self._env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
        )

    def up(self) -> None:
        self._run("up")

    def down(self) -> None:
        self._run("down")

    def restart(self) -> float:
        """Stop and start again (same data, same port); returns the seconds it was away."""
        started = time.monotonic()
        self.down()
        self.up()
        return time.monotonic() - started

    def pid(self) -> int | None:
        with suppress(OSError, ValueError):
            return int((self.data_dir / "broker.pid").read_text())
        return None


@contextmanager
def dedicated_broker() -> Iterator[LocalBroker]:
    """A broker of this run alone (free port, temporary data folder), removed afterwards."""
    data = Path(tempfile.mkdtemp(prefix="revops-bench-kafka-"))
    broker = LocalBroker(free_port(), data)
    broker.up()
    try:
        yield broker
    finally:
        broker.down()
        shutil.rmtree(data, ignore_errors=True)


# --- pipeline -------------------------------------------------------------------------------


@dataclass
class Pipeline:
    settings: Settings
    stack: LocalStack
    sink: SinkClient
    sink_process: subprocess.Popen[bytes]
    var_dir: Path
    env: dict[str, str]

    def pids(self) -> dict[str, int]:
        procs = {name: p.pid for name, p in self.stack.processes.items() if p.poll() is None}
        procs.update({name: p.pid for name, p in self.stack.replicas.items() if p.poll() is None})
        return procs

    @property
    def state_dir(self) -> Path:
        return self.settings.resolved_state_dir


def run_topics(prefix: str) -> dict[str, str]:
    names = {f: f"{prefix}.{f.replace('_', '-')}" for f in TOPIC_FIELDS}
    return names


def _wait_http(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with suppress(httpx.HTTPError):
            httpx.get(url, timeout=1.0)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


@contextmanager
def pipeline(
    bootstrap: str,
    work_dir: Path,
    *,
    accounts: int = 50,
    extra_env: dict[str, str] | None = None,
    start: bool = True,
) -> Iterator[Pipeline]:
    """Warehouse, topics, sink and the four services (each its own process) for one run."""
    var_dir = work_dir / "var"
    prefix = f"bench.{uuid.uuid4().hex[:8]}"
    topics = run_topics(prefix)
    sink_port = free_port()
    env = {
        "REVOPS_VAR_DIR": str(var_dir),
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REVOPS_WEBHOOKS_FILE": str(CHAOS_WEBHOOKS),
        "REVOPS_SINK_PORT": str(sink_port),
        "REVOPS_RETRY_INITIAL_DELAY_S": "0.1",
        **{f"REVOPS_TOPIC_{f.upper()}": name for f, name in topics.items()},
        **(extra_env or {}),
    }
    settings = Settings(
        kafka_bootstrap_servers=bootstrap, var_dir=var_dir, topics=TopicNames.model_validate(topics)
    )
    if not settings.resolved_warehouse_path.exists():
        seed_warehouse(settings.resolved_warehouse_path, accounts=accounts, days=365, seed=11)
    asyncio.run(ensure_topics(settings))
    (var_dir / "logs").mkdir(parents=True, exist_ok=True)
    sink_log = (var_dir / "logs" / "sink.log").open("ab")
    sink_process = subprocess.Popen(
        [sys.executable, "-m", "bench.sink", "--port", str(sink_port)],
        cwd=PROJECT_ROOT,
        stdout=sink_log,
        stderr=subprocess.STDOUT,
    )
    stack = LocalStack(
        settings,
        log_dir=var_dir / "logs",
        ports={name: free_port() for name in SERVICES},
        env=env,
    )
    try:
        _wait_http(f"http://127.0.0.1:{sink_port}/_stats")
        if start:
            stack.start()
            asyncio.run(stack.wait_ready(120))
        yield Pipeline(settings, stack, SinkClient(sink_port), sink_process, var_dir, env)
    finally:
        stack.stop()
        sink_process.terminate()
        with suppress(subprocess.TimeoutExpired):
            sink_process.wait(10)
        try:
            asyncio.run(delete_topics(settings))
        except Exception as exc:  # a broker a chaos run left down: say so, do not mask
            print(f"could not delete this run's topics ({prefix}.*): {exc!r}", file=sys.stderr)


def batch_counters(p: Pipeline) -> dict[str, tuple[float, float]]:
    """Consumed batches and records so far, per `service/topic` (each service's
    `revops_batch_records` histogram); two snapshots give a phase's records per batch."""
    counters: dict[str, tuple[float, float]] = {}
    for port in p.stack.ports.values():
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            continue  # a service that is not serving (the console, a killed replica)
        for family in text_string_to_metric_families(text):
            if family.name != "revops_batch_records":
                continue
            for sample in family.samples:
                key = f"{sample.labels['service']}/{sample.labels['topic'].rsplit('.', 1)[-1]}"
                batches, records = counters.get(key, (0.0, 0.0))
                if sample.name.endswith("_count"):
                    counters[key] = (sample.value, records)
                elif sample.name.endswith("_sum"):
                    counters[key] = (batches, sample.value)
    return counters


def records_per_batch(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, float]:
    """Records per consumed batch of each consumer between two `batch_counters` snapshots."""
    shares = {}
    for key, (batches, records) in sorted(after.items()):
        b0, r0 = before.get(key, (0.0, 0.0))
        if batches > b0:
            shares[key] = round((records - r0) / (batches - b0), 2)
    return shares


# --- triggers -------------------------------------------------------------------------------


def trigger_mix(
    settings: Settings, count: int, run: str, deal_share: float = 0.5
) -> list[RawTrigger]:
    """`count` triggers alternating deal-quality (open opportunities) and consumption
    (every account) analyses over the warehouse, each with its own request id."""
    warehouse = open_warehouse(settings)
    try:
        deals = warehouse.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": 100_000})
        accounts = warehouse.fetch_all(LIST_ACCOUNTS, {"limit": 100_000})
    finally:
        warehouse.close()
    deal_cycle = itertools.cycle(deals)
    account_cycle = itertools.cycle(accounts)
    every = max(1, round(1 / deal_share)) if deal_share > 0 else 0
    triggers = []
    for i in range(count):
        if every and i % every == 0:
            deal = next(deal_cycle)
            params = TriggerParameters(
                account_id=str(deal["sf_account_id"]),
                opportunity_id=str(deal["opportunity_id"]),
                analysis_type=AnalysisType.DEAL_QUALITY,
            )
        else:
            account = next(account_cycle)
            params = TriggerParameters(
                account_id=str(account["sf_account_id"]), analysis_type=AnalysisType.CONSUMPTION
            )
        triggers.append(
            RawTrigger(
                trigger_type=TriggerType.MANUAL,
                parameters=params,
                request_id=f"{run}-{i:06d}",
                requester="bench",
            )
        )
    return triggers
