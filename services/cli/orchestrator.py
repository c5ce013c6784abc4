"""`revops run` / `revops demo`: the whole pipeline on one machine.

Seeds the demo warehouse on first run, makes sure the topics exist, starts every service as
its own process (exactly as Kubernetes would, one process per agent), fires demo triggers
and prints each flow output as it arrives.

The services are this process's children and never outlive it: SIGTERM, SIGINT and SIGHUP
stop them all (`LocalStack.stop`, services/cli/stop_signals.py), and a child whose parent
vanished without stopping it (SIGKILL) stops by itself (`REVOPS_STOP_WITH_PARENT`,
services.common.serve). A start that
finds a service's port taken says by which process, instead of probing whoever answers.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import typer

from contracts import AnalysisType, FlowOutput, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from demo.seed import seed_warehouse
from services.cli.flow_lines import describe_flow, describe_rejection
from services.cli.stop_signals import StopSignals
from services.common.dlq import Rejection
from services.common.flows import FlowWatcher, publish_triggers
from services.common.kafka_clients import KafkaUnavailableError
from services.common.logging import configure_cli
from services.common.ports import port_is_free, port_owner
from services.common.processes import PARENT_PID_ENV, PIPELINE
from services.common.serve import STOP_SIGNALS
from services.common.settings import PROJECT_ROOT, Settings
from services.common.topics import ensure_topics
from services.data_agent.fleet import fleet_screen
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.queries import LIST_OPEN_OPPORTUNITIES
from services.decision_agent.model.describe import describe_model

SERVICES = PIPELINE
# Started by `revops run` / `demo` next to SERVICES (the benches and fault runs leave it out).
CONSOLE = "console"
CONSOLE_USERS_ENV = "REVOPS_SECRET_CONSOLE_USERS"
DEMO_WEBHOOKS = PROJECT_ROOT / "services" / "webhook_processor" / "webhooks.demo.yaml"

__all__ = ["SERVICES", "LocalStack", "StackError", "describe_flow", "prepare", "summary"]


class StackError(RuntimeError):
    """The local stack cannot start (a port taken, a service exited); one line for the user."""


def default_ports(settings: Settings) -> dict[str, int]:
    """`REVOPS_RUN_BASE_PORT` (9101) and the next three, in SERVICES order."""
    return {name: settings.run_base_port + i for i, name in enumerate(SERVICES)}


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
        self.ports = ports or default_ports(settings)
        self.extra_env = env or {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # Extra replicas of a service ("decision_agent#2"): same consumer group, own port.
        self.replicas: dict[str, subprocess.Popen[bytes]] = {}
        self.replica_ports: dict[str, int] = {}

    def ensure_warehouse(self, accounts: int = 50) -> Path:
        path = self.settings.resolved_warehouse_path
        if self.settings.embedded_warehouse and not path.exists():
            typer.echo(f"seeding the demo warehouse ({accounts} accounts, 365 days) at {path}")
            seed_warehouse(path, accounts=accounts)
        return path

    def check_ports(self, with_console: bool = False) -> None:
        """Raise StackError naming the process that holds a service's port."""
        for name in (*SERVICES, CONSOLE) if with_console else SERVICES:
            port = self.console_port if name == CONSOLE else self.ports[name]
            if not port_is_free(port, self.settings.metrics_host):
                owner = port_owner(port) or "another process"
                raise StackError(
                    f"port {port} for {name} is taken by {owner}: stop it, or give this stack "
                    "other ports with REVOPS_RUN_BASE_PORT"
                )

    def start(self) -> None:
        self.check_ports()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            self.start_one(name)

    async def wait_ready(self, timeout_s: float = 60.0, names: Sequence[str] = SERVICES) -> None:
        deadline = time.monotonic() + timeout_s
        pending = set(names)
        async with httpx.AsyncClient(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for name in list(pending):
                    if await self._is_ready(client, name):
                        pending.discard(name)
                await asyncio.sleep(0.3)
        if pending:
            raise StackError(
                f"not ready after {timeout_s:.0f} s: {', '.join(sorted(pending))}; "
                f"see the logs in {self.log_dir}"
            )

    async def _is_ready(self, client: httpx.AsyncClient, name: str) -> bool:
        """Ready, and it is our child that answers (not a process left on the port)."""
        proc = self.processes[name]
        if proc.poll() is not None:
            raise StackError(f"{name} exited with {proc.returncode}; see {self.log_dir / name}.log")
        port = self.console_port if name == CONSOLE else self.ports[name]
        try:
            response = await client.get(f"http://127.0.0.1:{port}/readyz")
        except httpx.HTTPError:
            return False
        try:
            answering = response.json().get("pid")
        except (ValueError, AttributeError):
            answering = "unknown"  # not a revops service at all
        if answering is not None and answering != proc.pid:
            raise StackError(
                f"port {port} answers for pid {answering}, not for {name} (pid {proc.pid}): "
                f"another process holds it ({port_owner(port) or 'unknown'})"
            )
        return response.status_code == 200

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

    @property
    def console_port(self) -> int:
        return self.ports.get(CONSOLE, self.settings.console_port)

    def start_console(self) -> str:
        """The web console; returns its URL and how to sign in. With no console users
        configured (env secrets), a one-run operator token is made and printed."""
        port = self.console_port
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
        # The child writes to its own copy of the file; ours is closed once it started
        # (kept open, every restart of a service would leave one more file open here).
        with (self.log_dir / log_name).open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                env={**env, "REVOPS_HTTP_PORT": str(port), PARENT_PID_ENV: str(os.getpid())},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
            )

    def stop(self) -> None:
        """Terminate every child and wait for it (killed after 20 s). A second signal while
        stopping does not interrupt this: every child is still waited for."""
        with _signals_deferred():
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
                    proc.wait()


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore the stop signals meanwhile (only in the main thread, where they are handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


def outbox_counts(settings: Settings) -> dict[str, int]:
    outbox = settings.resolved_outbox_dir
    if not outbox.exists():
        return {}
    return {f.stem: sum(1 for _ in f.open()) for f in sorted(outbox.glob("*.jsonl"))}


def describe_outcome(outcome: FlowOutput | Rejection) -> str:
    if isinstance(outcome, Rejection):
        return describe_rejection(outcome)
    return describe_flow(outcome)


async def fire_and_watch(
    settings: Settings, triggers: list[RawTrigger], timeout_s: float
) -> dict[str, FlowOutput]:
    """Publish the demo triggers and print each outcome; returns the flow outputs (a
    rejected demo trigger is printed and counted as missing)."""
    watcher = FlowWatcher(settings, rejections=True)
    await _start_watching(watcher, settings)
    try:
        await publish_triggers(settings, triggers)
        typer.echo(f"published {len(triggers)} demo triggers to {settings.topics.triggers}")
        wanted = {t.request_id for t in triggers if t.request_id}
        done: set[str] = set()
        found: dict[str, FlowOutput] = {}
        async for outcome in watcher.outcomes(timeout_s):
            if outcome.request_id in wanted and outcome.request_id not in done:
                done.add(outcome.request_id)
                if isinstance(outcome, FlowOutput):
                    found[outcome.request_id] = outcome
                typer.echo(describe_outcome(outcome))
                if done == wanted:
                    break
        return found
    finally:
        await watcher.stop()


async def watch_forever(settings: Settings) -> None:
    watcher = FlowWatcher(settings, rejections=True)
    await _start_watching(watcher, settings)
    try:
        async for outcome in watcher.outcomes():
            typer.echo(describe_outcome(outcome))
    finally:
        await watcher.stop()


async def _start_watching(watcher: FlowWatcher, settings: Settings) -> None:
    """Start the watcher (Kafka unreachable: one line, exit 1); from then on a broker
    outage shows as rate-limited library lines while the watch goes on."""
    configure_cli()
    try:
        await watcher.start()
    except KafkaUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    configure_cli(watching=True)


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


def prepare(stack: LocalStack, stop: StopSignals) -> None:
    """Warehouse, topics, the four services, ready. What stops it (a port taken, Kafka
    unreachable, a service that exits) is one line on stderr and exit status 1."""
    configure_cli()
    try:
        # What can fail in a second is checked before the warehouse is seeded (minutes).
        stack.check_ports(with_console=True)
        stop.run(ensure_topics(stack.settings))
        stack.ensure_warehouse()  # outside the event loop: a stop signal interrupts it
        stack.start()
        stop.run(stack.wait_ready())
        typer.echo(stack.start_console())
        # "ready" only once the console answers too: the URL just printed must work, and a
        # console that could not start (its port taken meanwhile) is an error, not a dead link.
        stop.run(stack.wait_ready(names=(CONSOLE,)))
    except (StackError, KafkaUnavailableError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
