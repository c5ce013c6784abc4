"""kill -9 fault injection: run N triggers through the whole pipeline while every service
is SIGKILLed three times, the broker is restarted once, and one destination fails (500s,
then hangs) for a while; then account for every trigger, action and insight.

    .venv/bin/python -m bench.chaos --triggers 10000                     (make chaos)
    .venv/bin/python -m bench.chaos --triggers 3000 --replicas 3         (make chaos-replicas)

With `--replicas N` every service runs N processes sharing one PostgreSQL store
(`--database-url`, default REVOPS_DATABASE_URL, else a throwaway local server), and each
kill hits a replica drawn at random (seeded), so every replica of every service kind can die.

Faults are placed at random moments (seeded) after 20 % of the flows completed. The broker
is this run's own jar broker (free port, temporary data), so restarting it disturbs
nobody; with REVOPS_KAFKA_BOOTSTRAP_SERVERS set the run uses that broker and skips the
restart. Exits non-zero on any lost or duplicated effect.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.audit import Audit, audit_run
from bench.bench_stores import postgres as postgres_for_bench
from bench.harness import LocalBroker, Pipeline, dedicated_broker, pipeline, trigger_mix
from bench.load import FlowCollector, TriggerPublisher
from bench.scale_out import replicas_ready, wait_ready
from bench.sink import free_port
from services.cli.orchestrator import SERVICES
from services.dlq.reader import read_dead_letters
from services.dlq.replay import ReplayOptions, replay
from services.dlq.replay_log import ReplayLog
from services.dlq.selection import Selection

OUTAGE_DESTINATION = ("crm_salesforce", "/crm")


@dataclass(frozen=True)
class ChaosPlan:
    triggers: int = 10_000
    rate: float = 20.0  # offered triggers/s (above capacity: a backlog forms, as under load)
    kills_per_service: int = 3
    restart_broker: bool = True
    outage_s: float = 60.0
    seed: int = 7
    first_fault_at: float = 0.2  # fraction of flows completed
    last_fault_at: float = 0.85
    drain_timeout_s: float = 7200.0
    stall_timeout_s: float = 120.0  # after every fault: no flow completes for this long
    # Processes per service. Above 1 the services share a PostgreSQL store (a replica's
    # SQLite file would be its own); each service's kills hit replicas drawn at random.
    replicas: int = 1


@dataclass
class Fault:
    at_progress: float
    kind: str  # kill | broker | outage
    target: str = ""  # the service (kill), "kafka" (broker), the destination (outage)
    replica: int = 0  # kill: which process of the service (0: the stack's own)
    fired_at: float | None = None  # seconds since start
    recovered_s: float | None = None


@dataclass
class ChaosReport:
    plan: ChaosPlan
    faults: list[Fault] = field(default_factory=list)
    duration_s: float = 0.0
    drain_after_last_fault_s: float = 0.0
    trigger_resends: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    replayed: int = 0
    audit: Audit = field(default_factory=Audit)
    audit_before_replay: Audit | None = None
    started_wall: float = 0.0

    def duplicates_by_second(self) -> dict[int, int]:
        """When the repeated flow records were produced (seconds since the start, beside the
        faults' `fired_at`): a crash or a broker restart repeats what was in flight then."""
        seconds = Counter(int(t - self.started_wall) for t in self.audit.duplicate_flow_times)
        return dict(sorted(seconds.items()))

    @property
    def ok(self) -> bool:
        return self.audit.ok

    def summary(self) -> dict[str, Any]:
        kills = [f for f in self.faults if f.kind == "kill" and f.fired_at is not None]
        recoveries = [f.recovered_s for f in self.faults if f.recovered_s is not None]
        return {
            "ok": self.ok,
            "triggers": self.plan.triggers,
            "replicas_per_service": self.plan.replicas,
            "kills": len(kills),
            "kills_per_service": {
                name: sum(1 for f in kills if f.target == name) for name in SERVICES
            },
            "killed_replicas": {
                name: sorted({f.replica for f in kills if f.target == name}) for name in SERVICES
            },
            "broker_restarts": sum(
                1 for f in self.faults if f.kind == "broker" and f.fired_at is not None
            ),
            "outage": next(
                (
                    {"destination": f.target, "seconds": self.plan.outage_s, "at_s": f.fired_at}
                    for f in self.faults
                    if f.kind == "outage"
                ),
                None,
            ),
            "time_to_recover_s": {
                "max": round(max(recoveries), 2) if recoveries else None,
                "mean": round(sum(recoveries) / len(recoveries), 2) if recoveries else None,
            },
            "drain_after_last_fault_s": round(self.drain_after_last_fault_s, 1),
            "duration_s": round(self.duration_s, 1),
            "trigger_resends": self.trigger_resends,
            "dead_letters": self.dead_letters,
            "dlq_replayed": self.replayed,
            **self.audit.summary(),
            "duplicate_flow_records_by_second": self.duplicates_by_second(),
        }


def schedule(plan: ChaosPlan) -> list[Fault]:
    rng = random.Random(plan.seed)

    def moment() -> float:
        return round(rng.uniform(plan.first_fault_at, plan.last_fault_at), 3)

    faults = [
        Fault(moment(), "kill", name, replica)
        for name in SERVICES
        for replica in kill_victims(rng, plan.replicas, plan.kills_per_service)
    ]
    if plan.restart_broker:
        faults.append(Fault(round(rng.uniform(0.4, 0.6), 3), "broker", "kafka"))
    if plan.outage_s > 0:
        faults.append(Fault(plan.first_fault_at + 0.05, "outage", OUTAGE_DESTINATION[0]))
    return sorted(faults, key=lambda f: f.at_progress)


def kill_victims(rng: random.Random, replicas: int, kills: int) -> list[int]:
    """Which replica each of a service's `kills` hits: a random order of all its replicas,
    repeated as needed, so `kills >= replicas` kills every replica at least once and fewer
    kills hit distinct ones. One replica draws nothing (a seed keeps its old schedule)."""
    if replicas == 1:
        return [0] * kills
    victims: list[int] = []
    while len(victims) < kills:
        victims += rng.sample(range(replicas), replicas)
    return victims[:kills]


class ChaosRun:
    def __init__(
        self,
        p: Pipeline,
        broker: LocalBroker | None,
        plan: ChaosPlan,
        log: Any = print,
        database_url: str | None = None,
    ) -> None:
        self.p = p
        self.database_url = database_url
        self.broker = broker
        self.plan = plan
        self.log = log
        self.report = ChaosReport(plan, schedule(plan))
        self.started = time.monotonic()
        self.report.started_wall = time.time()  # record timestamps are wall-clock
        self._background: list[asyncio.Task[None]] = []
        self._locks: dict[str, asyncio.Lock] = {}

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 2)

    async def _kill(self, fault: Fault) -> None:
        """SIGKILL one process of the service and start it again on its port."""
        stack, name, index = self.p.stack, fault.target, fault.replica
        key = f"{name}#{index}"
        proc = stack.replicas[key] if index else stack.processes[name]
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        if index:
            stack.start_replica(name, index, stack.replica_ports[key])
            port = stack.replica_ports[key]
        else:
            stack.start_one(name)
            port = stack.ports[name]
        fault.recovered_s = round(await wait_ready(port, timeout_s=120.0, give_up=False), 2)

    async def _restart_broker(self, fault: Fault) -> None:
        assert self.broker is not None
        fault.recovered_s = round(await asyncio.to_thread(self.broker.restart), 2)

    async def _outage(self, fault: Fault) -> None:
        prefix = OUTAGE_DESTINATION[1]
        half = self.plan.outage_s / 2
        await asyncio.to_thread(self.p.sink.set_mode, prefix, "fail")
        await asyncio.sleep(half)
        await asyncio.to_thread(self.p.sink.set_mode, prefix, "hang")
        await asyncio.sleep(half)
        await asyncio.to_thread(self.p.sink.set_mode, prefix, "ok")
        fault.recovered_s = 0.0

    async def _fire(self, fault: Fault) -> None:
        # One fault per target at a time: a service is killed again only once its previous
        # restart is ready (else the kill would only interrupt its start-up).
        async with self._locks.setdefault(f"{fault.target}#{fault.replica}", asyncio.Lock()):
            fault.fired_at = self.elapsed()
            what = f"{fault.target}#{fault.replica}" if fault.kind == "kill" else fault.target
            self.log(f"[{fault.fired_at:7.1f}s] {fault.kind} {what}")
            action = {"kill": self._kill, "broker": self._restart_broker, "outage": self._outage}
            await action[fault.kind](fault)

    async def run(self) -> ChaosReport:
        plan = self.plan
        settings = self.p.settings
        triggers = trigger_mix(settings, plan.triggers, f"chaos-{uuid.uuid4().hex[:6]}")
        wanted = {str(t.request_id) for t in triggers}
        collector = FlowCollector(settings)
        await collector.start()
        publisher = TriggerPublisher(settings)
        await publisher.start()
        publishing = asyncio.create_task(publisher.send_at_rate(triggers, plan.rate))
        pending = [f for f in self.report.faults if f.kind != "broker" or self.broker]
        last_log = last_progress_at = 0.0
        last_done = -1
        deadline = time.monotonic() + plan.drain_timeout_s
        try:
            while time.monotonic() < deadline:
                done = collector.completed(wanted)
                progress = done / len(wanted)
                while pending and progress >= pending[0].at_progress:
                    fault = pending.pop(0)
                    self._background.append(asyncio.create_task(self._fire(fault)))
                if done != last_done:
                    last_done, last_progress_at = done, time.monotonic()
                if time.monotonic() - last_log > 10:
                    last_log = time.monotonic()
                    self.log(f"[{self.elapsed():7.1f}s] flows {done}/{len(wanted)}")
                faults_done = not pending and all(t.done() for t in self._background)
                if done == len(wanted) and faults_done and publishing.done():
                    break
                if faults_done and time.monotonic() - last_progress_at > plan.stall_timeout_s:
                    self.log(f"no flow completed for {plan.stall_timeout_s:.0f} s: auditing")
                    break
                await asyncio.sleep(0.2)
            await asyncio.gather(*self._background)
            last_fault = max((f.fired_at or 0.0) for f in self.report.faults)
            self.report.drain_after_last_fault_s = max(0.0, self.elapsed() - last_fault)
            await publishing
            self.report.trigger_resends = publisher.resends
            await self._settle(collector, wanted)
            self.report.audit_before_replay = self._audit(collector, wanted)
            await self._replay_dead_letters(collector, wanted)
            self.report.audit = self._audit(collector, wanted)
        finally:
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
            await publisher.stop()
            await collector.stop()
        self.report.duration_s = self.elapsed()
        return self.report

    async def _settle(
        self, collector: FlowCollector, wanted: set[str], quiet_s: float = 3.0
    ) -> None:
        """Wait until the sink has seen nothing new for `quiet_s` (in-flight retries and
        duplicate flow records land), at most a minute."""
        deadline = time.monotonic() + 60
        last = (-1, -1)
        while time.monotonic() < deadline:
            now = (len(self.p.sink.stats().answers), collector.records)
            if now == last:
                return
            last = now
            await asyncio.sleep(quiet_s)

    def _audit(self, collector: FlowCollector, wanted: set[str]) -> Audit:
        return audit_run(
            sorted(wanted),
            collector.seen,
            self.p.sink.stats(),
            self.p.state_dir,
            self.p.settings.resolved_outbox_dir,
            self.database_url,
        )

    async def _replay_dead_letters(self, collector: FlowCollector, wanted: set[str]) -> None:
        """Whatever sits in a DLQ is replayed once (`revops dlq replay`), then re-checked."""
        settings = self.p.settings
        letters = await read_dead_letters(settings, timeout_s=10)
        counts: dict[str, int] = {}
        for letter in letters:
            counts[letter.code] = counts.get(letter.code, 0) + 1
        self.report.dead_letters = counts
        if not letters:
            return
        log = ReplayLog(self.p.state_dir / "dlq-replays.db")
        result = await replay(settings, Selection(), ReplayOptions(), log)
        self.report.replayed = len([o for o in result.outcomes if o.action.value == "replayed"])
        self.log(f"replayed {self.report.replayed} dead letters; waiting for their effects")
        await asyncio.sleep(5)
        await self._settle(collector, wanted)


def run_chaos(
    plan: ChaosPlan,
    work_dir: Path,
    bootstrap: str | None = None,
    log: Any = print,
    database_url: str | None = None,
) -> ChaosReport:
    """One chaos run on its own broker (or on `bootstrap`, without the broker restart);
    with `database_url`, every process of every service keeps its state in that PostgreSQL."""
    if plan.replicas > 1 and not database_url:
        raise ValueError("replicas share state only through PostgreSQL: give a database URL")
    with ExitStack() as stack:
        broker: LocalBroker | None = None
        if bootstrap is None:
            broker = stack.enter_context(dedicated_broker())
            bootstrap = broker.bootstrap
        env = {"REVOPS_DATABASE_URL": database_url} if database_url else None
        p = stack.enter_context(pipeline(bootstrap, work_dir, extra_env=env))
        for name in SERVICES:
            for index in range(1, plan.replicas):
                p.stack.start_replica(name, index, free_port())
        if plan.replicas > 1:
            asyncio.run(replicas_ready(p.stack))
        log(f"pipeline ready on {bootstrap} ({plan.replicas} per service); state {p.var_dir}")
        return asyncio.run(ChaosRun(p, broker, plan, log, database_url).run())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def shared_database(stack: ExitStack, url: str | None, replicas: int) -> str | None:
    """The PostgreSQL URL the replicas share: `url`, or with several replicas and none
    given, a new database on a throwaway server that lives as long as `stack`."""
    if url or replicas <= 1:
        return url
    fresh_database, _ = stack.enter_context(postgres_for_bench(None))
    return fresh_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triggers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=ChaosPlan.rate)
    parser.add_argument("--outage-s", type=float, default=60.0)
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per service")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--replicas", type=int, default=1, help="processes per service")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("REVOPS_DATABASE_URL"),
        help="PostgreSQL shared by every process (with --replicas above 1 and no URL, a "
        "throwaway local server is started)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # stop the services and the broker on TERM

    bootstrap = os.environ.get("REVOPS_KAFKA_BOOTSTRAP_SERVERS")
    plan = ChaosPlan(
        triggers=args.triggers,
        rate=args.rate,
        kills_per_service=args.kills,
        restart_broker=bootstrap is None,
        outage_s=args.outage_s,
        seed=args.seed,
        replicas=args.replicas,
    )
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="revops-chaos-"))
    with ExitStack() as stack:
        url = shared_database(stack, args.database_url, plan.replicas)
        report = run_chaos(
            plan, work, bootstrap, log=lambda m: print(m, flush=True), database_url=url
        )
    summary = report.summary()
    summary["faults"] = [vars(f) for f in report.faults]
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)
    print("CHAOS " + ("PASSED" if report.ok else "FAILED") + f" (state kept in {work})")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
