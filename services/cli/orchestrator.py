"""`revops run` / `revops demo`: the whole pipeline on one machine.

Seeds the demo warehouse on first run, makes sure the topics exist, starts every service as
its own process (exactly as Kubernetes would, one process per agent), fires demo triggers
and prints each flow output as it arrives.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import typer

from contracts import AnalysisType, FlowOutput, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from services.common.flows import FlowWatcher, publish_triggers
from services.common.serve import DEFAULT_PORTS
from services.common.settings import PROJECT_ROOT, Settings
from services.common.topics import ensure_topics
from services.data_agent.fleet import fleet_screen
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.generator.seed import seed_warehouse
from services.data_agent.warehouse.queries import LIST_OPEN_OPPORTUNITIES
from services.decision_agent.model.describe import describe_model

SERVICES = ("data_agent", "decision_agent", "execution_agent", "webhook_processor")
# Started by `revops run` / `demo` next to SERVICES (the benches and fault runs leave it out).
CONSOLE = "console"
CONSOLE_USERS_ENV = "REVOPS_SECRET_CONSOLE_USERS"
DEMO_WEBHOOKS = PROJECT_ROOT / "services" / "webhook_processor" / "webhooks.demo.yaml"


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("REVOPS_WEBHOOKS_FILE", str(DEMO_WEBHOOKS))
    env["REVOPS_KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class LocalStack:
    def __init__(
        self,
        settings: Settings,
        log_dir: Path | None = None,
        ports: dict[str, int] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.log_dir = log_dir or settings.var_dir / "logs"
        self.ports = ports or {name: DEFAULT_PORTS[name] for name in SERVICES}
        self.extra_env = env or {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # Extra replicas of a service ("decision_agent#2"): same consumer group, own port.
        self.replicas: dict[str, subprocess.Popen[bytes]] = {}
        self.replica_ports: dict[str, int] = {}

    def ensure_warehouse(self, accounts: int = 50) -> Path:
        path = self.settings.resolved_warehouse_path
        if self.settings.warehouse_backend == "duckdb" and not path.exists():
            typer.echo(f"seeding the demo warehouse ({accounts} accounts, 365 days) at {path}")
            seed_warehouse(path, accounts=accounts)
        return path

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            self.start_one(name)

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        pending = set(SERVICES)
        async with httpx.AsyncClient(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for name in list(pending):
                    proc = self.processes[name]
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {proc.returncode}; see {self.log_dir / name}.log"
                        )
                    try:
                        url = f"http://127.0.0.1:{self.ports[name]}/readyz"
                        if (await client.get(url)).status_code == 200:
                            pending.discard(name)
                    except httpx.HTTPError:
                        pass
                await asyncio.sleep(0.3)
        if pending:
            raise RuntimeError(f"not ready after {timeout_s:.0f} s: {', '.join(sorted(pending))}")

    def start_one(self, name: str) -> None:
        """(Re)start one service, e.g. after it was killed."""
        self.processes[name] = self._spawn(name, self.ports[name], f"{name}.log")

    def start_replica(self, name: str, index: int, port: int) -> str:
        """(Re)start replica `index` of service `name` on HTTP port `port`: one more process
        in the service's consumer group, so the group shares the topic's partitions.
        Returns its key in `replicas` ("<name>#<index>")."""
        key = f"{name}#{index}"
        self.replica_ports[key] = port
        self.replicas[key] = self._spawn(name, port, f"{name}-{index}.log")
        return key

    def start_console(self) -> str:
        """The web console; returns its URL and how to sign in. With no console users
        configured (env secrets), a one-run operator token is made and printed."""
        port = self.ports.get(CONSOLE, DEFAULT_PORTS[CONSOLE])
        env: dict[str, str] = {}
        how = f"sign in with a token of {CONSOLE_USERS_ENV}"
        env_secrets = os.environ.get("REVOPS_SECRETS_BACKEND", "env") == "env"
        if env_secrets and not {**os.environ, **self.extra_env}.get(CONSOLE_USERS_ENV):
            token = secrets.token_urlsafe(18)
            env[CONSOLE_USERS_ENV] = f"dev:operator:{token}"
            how = f"sign in with the access token {token} (operator 'dev', this run only)"
        self.processes[CONSOLE] = self._spawn(CONSOLE, port, f"{CONSOLE}.log", env)
        return f"console: http://127.0.0.1:{port}/ ({how})"

    def _spawn(
        self, name: str, port: int, log_name: str, extra: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = {**child_env(self.settings), **self.extra_env, **(extra or {})}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / log_name).open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env={**env, "REVOPS_HTTP_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )

    def stop(self) -> None:
        every = {**self.processes, **self.replicas}
        for proc in every.values():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in every.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                typer.echo(f"{name} did not stop in 20 s; killing it", err=True)
                proc.kill()


def demo_triggers(settings: Settings, deals: int = 6, accounts: int = 6) -> list[RawTrigger]:
    """Open deals, and the accounts the fleet screen finds something to say about."""
    warehouse = open_warehouse(settings)
    try:
        opportunities = warehouse.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": deals})
        candidates = fleet_screen(warehouse)[:accounts]
    finally:
        warehouse.close()
    run = uuid.uuid4().hex[:8]
    triggers = [
        RawTrigger(
            trigger_type=TriggerType.MANUAL,
            parameters=TriggerParameters(
                account_id=str(o["sf_account_id"]),
                opportunity_id=str(o["opportunity_id"]),
                analysis_type=AnalysisType.DEAL_QUALITY,
            ),
            request_id=f"demo-{run}-deal-{o['opportunity_id']}",
            requester="demo",
        )
        for o in opportunities
    ]
    triggers += [
        RawTrigger(
            trigger_type=TriggerType.SCHEDULED,
            parameters=TriggerParameters(
                account_id=c.account_id, analysis_type=AnalysisType.CONSUMPTION
            ),
            request_id=f"demo-{run}-usage-{c.account_id}",
            requester="demo",
        )
        for c in candidates
    ]
    return triggers


def describe_flow(flow: FlowOutput) -> str:
    subject = flow.subject.opportunity_id or flow.subject.account_id
    scores = ", ".join(f"{k}={v}" for k, v in sorted(flow.scores.items()))
    s = flow.execution.summary
    return (
        f"[{flow.status}] {flow.analysis_type.value} {subject}: {scores} | "
        f"actions {s.total_actions} (ok {s.successful}, queued {s.queued}, failed {s.failed}) | "
        f"{flow.execution_time_ms} ms"
    )


def outbox_counts(settings: Settings) -> dict[str, int]:
    outbox = settings.resolved_outbox_dir
    if not outbox.exists():
        return {}
    return {f.stem: sum(1 for _ in f.open()) for f in sorted(outbox.glob("*.jsonl"))}


async def fire_and_watch(
    settings: Settings, triggers: list[RawTrigger], timeout_s: float
) -> dict[str, FlowOutput]:
    watcher = FlowWatcher(settings)
    await watcher.start()
    try:
        await publish_triggers(settings, triggers)
        typer.echo(f"published {len(triggers)} demo triggers to {settings.topics.triggers}")
        wanted = {t.request_id for t in triggers if t.request_id}
        found: dict[str, FlowOutput] = {}
        async for flow in watcher.outputs(timeout_s):
            if flow.request_id in wanted and flow.request_id not in found:
                found[flow.request_id] = flow
                typer.echo(describe_flow(flow))
                if len(found) == len(wanted):
                    break
        return found
    finally:
        await watcher.stop()


async def watch_forever(settings: Settings) -> None:
    watcher = FlowWatcher(settings)
    await watcher.start()
    try:
        async for flow in watcher.outputs():
            typer.echo(describe_flow(flow))
    finally:
        await watcher.stop()


def summary(settings: Settings, flows: dict[str, FlowOutput], expected: int) -> str:
    statuses = Counter(f.status for f in flows.values())
    lines = [
        "",
        f"flows completed: {len(flows)}/{expected} "
        + " ".join(f"{k}={v}" for k, v in sorted(statuses.items())),
        f"insights recorded: {sum(len(f.insight_ids) for f in flows.values())} "
        f"(revops insights list; store {settings.resolved_state_dir / 'revops.db'})",
    ]
    counts = outbox_counts(settings)
    lines.append(
        f"deliveries written to the local outbox {settings.resolved_outbox_dir}: "
        + (", ".join(f"{k}={v}" for k, v in counts.items()) or "none")
    )
    lines.append(describe_model(settings))
    lines.append(f"service logs: {settings.var_dir / 'logs'}")
    return "\n".join(lines)


async def prepare(stack: LocalStack) -> None:
    stack.ensure_warehouse()
    await ensure_topics(stack.settings)
    stack.start()
    await stack.wait_ready()
    typer.echo(stack.start_console())
