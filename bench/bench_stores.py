"""CPU per flow of the operational store, SQLite against PostgreSQL, on the batch path.

    .venv/bin/python bench/bench_stores.py [--flows 1000] [--batch 500] [--repeats 3]
        [--database-url ...]

One flow is the store work the pipeline does for it: the execution agent's decision (insights
upserted, health, history, plan and execution recorded), the webhook processor's outbox
(store, claim, attempt, finish, publish mark) for each planned job, the execution agent
recording each result, and the flows' publish marks (one statement per flush of flow
outputs). The execution agent works a Kafka batch at a time
(`ExecutionAgent.handle_decisions` / `handle_action_results`: one transaction of `--batch`
records, set-based with no savepoint, services/common/stores/batch.py; a batch
with a failing record runs again with a savepoint per record, which this bench never
needs). The outbox calls are the webhook processor's, as that service makes
them for jobs delivered at the first try: the consumed batch stored in one transaction, then
a lane's claims of several jobs at once and each claimed set's final states with their
attempts written together, and one publish mark for the batch's results.

CPU is the bench process's plus, for PostgreSQL, the server's (every backend process),
divided by the flows, in total and per part (execution agent, outbox). Without
--database-url (or REVOPS_DATABASE_URL) a throwaway server is started from the machine's
PostgreSQL binaries, with fsync and full-page writes on and asynchronous commits: the
durability of the SQLite side (WAL, `synchronous = NORMAL`).

The issue's target on a 2-core box: PostgreSQL within 1.5x of SQLite. Figures are noisy on a
shared machine, so the two engines run alternately `--repeats` times (each PostgreSQL run on a
new database of the throwaway server), and the figures printed are the pair with the median
ratio, with the range of the ratios beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts import ActionJob, ActionResult, ActionStatus, AnalysisType, Flag, Subject
from contracts.analysis import AnalysisBody, AnalysisResults, Recommendation, ScoreDetail
from services.common.stores.postgres import close_pools
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import BatchResult, Decision, ExecutionAgent, HandlerOutput
from services.execution_agent.store import open_store
from services.webhook_processor.delivery_log import DELIVERED, Attempt, DeliveryLog, Finish
from services.webhook_processor.engine import CLAIM_BATCH


def analysis(n: int) -> AnalysisResults:
    flag = Flag(
        type="risk",
        severity="high" if n % 3 else "critical",
        description="No customer calls in 30 days",
        code="missing_data_flag",
        category="deal_quality",
        insight_type="missing_data",
    )
    return AnalysisResults(
        request_id=f"bench-{n}",
        analysis_type=AnalysisType.DEAL_QUALITY,
        subject=Subject(account_id=f"ACC-{n % 50}", opportunity_id=f"OPP-{n % 200}"),
        analysis_results=AnalysisBody(
            scores={"deal_quality": 40 + n % 50},
            score_details={"deal_quality": ScoreDetail(score=40 + n % 50, band="at_risk")},
            flags=[flag],
        ),
        recommendations=[
            Recommendation(
                id="rec-1",
                priority="high",
                action="schedule_call",
                description="Call the champion",
                assignee="account_executive",
                based_on=[flag.code],
            )
        ],
        summary="bench analysis",
    )


@dataclass
class Clock:
    """CPU seconds per part: this process's and, when known, the PostgreSQL server's."""

    server_pid: int | None
    parts: dict[str, list[float]] = field(default_factory=dict)  # part -> [client, server]

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        me = psutil.Process()
        before, server_before = me.cpu_times(), server_cpu_s(self.server_pid)
        try:
            yield
        finally:
            after = me.cpu_times()
            spent = self.parts.setdefault(name, [0.0, 0.0])
            spent[0] += (after.user - before.user) + (after.system - before.system)
            spent[1] += server_cpu_s(self.server_pid) - server_before


def handled(outcomes: Sequence[BatchResult]) -> list[HandlerOutput]:
    """The batch's outputs; a bench flow never fails, so an exception here is a bug."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [o for o in outcomes if not isinstance(o, BaseException)]


def run_flows(state: Path, url: str, flows: range, batch: int, clock: Clock) -> None:
    agent = ExecutionAgent(open_store(state / "revops.db", url=url), RoutingRules.load())
    outbox = DeliveryLog(state / "deliveries.db", url=url)
    for start in range(flows.start, flows.stop, batch):
        numbers = range(start, min(start + batch, flows.stop))
        with clock.part("execution_agent"):
            decided = handled(
                agent.handle_decisions([(f"ACC-{n % 50}", Decision(analysis(n))) for n in numbers])
            )
        jobs = [job for outcome in decided for job in outcome.jobs]
        with clock.part("outbox"):
            results = deliver(outbox, jobs)
        with clock.part("execution_agent"):
            keyed = [(job.account_id, r) for job, r in zip(jobs, results, strict=True)]
            done = handled(agent.handle_action_results(keyed))
            # the flow outputs' on_produced mark, one call per flush (ProducedMark)
            agent.flows_published(
                [o.flow_output.request_id for o in done if o.flow_output is not None]
            )


def deliver(outbox: DeliveryLog, jobs: Sequence[ActionJob]) -> list[ActionResult]:
    """The webhook processor's store calls for a consumed batch of jobs delivered at the
    first try (services/webhook_processor/engine.py): the batch stored in one transaction
    (`_store_batch`, set-based first: services/common/stores/batch.py); per destination, a
    lane's claims of up to `CLAIM_BATCH` jobs (`next_pending_many`), each set's final states
    with their successful attempts written together (`FinishBuffer.flush`); the batch's
    results marked published by one flush (`_flush_results`)."""
    outbox.in_one_transaction(
        jobs, outbox.add_job, key_of=lambda job: job.account_id, prepare=outbox.add_jobs
    )
    by_id = {job.action_id: job for job in jobs}
    results: dict[str, ActionResult] = {}
    for destination in dict.fromkeys(job.destination for job in jobs):
        while rows := outbox.next_pending_many(destination, 1, 0, CLAIM_BATCH):
            finishes = []
            for row in rows:
                job = by_id[row.action_id]
                result = ActionResult.of_job(
                    job, job.destination, ActionStatus.SUCCESS, response={"ok": True}
                )
                attempt = Attempt(job.destination, 1, "success", 200, 5.0)
                finishes.append(Finish(row.action_id, DELIVERED, [result], attempt=attempt))
                results[row.action_id] = result
            outbox.finish_many(finishes)
    outbox.mark_published_many([job.action_id for job in jobs])
    return [results[job.action_id] for job in jobs]


def server_cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(
    url: str, flows: int, batch: int, server_pid: int | None, first: int = 0
) -> dict[str, float]:
    """CPU per flow of `flows` new flows numbered from `first` (a repeat on the same
    PostgreSQL database starts after the previous one's numbers)."""
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: imports, schema, prepared statements. Flows of its own: in the one
        # PostgreSQL database of both runs, repeated request ids would make the measured
        # flows redeliveries (cheaper than new ones).
        measured = range(first, first + flows)
        run_flows(Path(tmp), url, range(measured.stop, measured.stop + 10), batch, Clock(None))
        clock = Clock(server_pid)
        started = time.perf_counter()
        run_flows(Path(tmp) / "run", url, measured, batch, clock)
        wall = time.perf_counter() - started
    close_pools()

    def per_flow(seconds: float) -> float:
        return round(seconds * 1000 / flows, 2)

    client = sum(c for c, _ in clock.parts.values())
    server = sum(s for _, s in clock.parts.values())
    figures = {
        "client_cpu_ms_per_flow": per_flow(client),
        "server_cpu_ms_per_flow": per_flow(server),
        "cpu_ms_per_flow": per_flow(client + server),
        "wall_ms_per_flow": per_flow(wall),
    }
    for name, (part_client, part_server) in clock.parts.items():
        figures[f"{name}_cpu_ms_per_flow"] = per_flow(part_client + part_server)
    return figures


@contextmanager
def postgres(url: str | None) -> Iterator[tuple[Callable[[], str], int | None]]:
    """(a function returning the DSN of a database to measure, the postmaster's pid when this
    machine runs it). A throwaway server gives a new, empty database each time; a given URL
    is the same database every time."""
    if url:
        yield (lambda: url), None
        return
    from tests.postgres_server import LocalPostgres, _binaries

    class DurablePostgres(LocalPostgres):
        """The tests' throwaway server runs without fsync and full-page writes (speed);
        here they are on, so a crash of the machine cannot corrupt it. Commits stay
        asynchronous (the last few may be lost, never half-applied), as SQLite's
        `synchronous = NORMAL` in WAL mode, which does not sync at each commit either."""

        durability = "-c fsync=on -c full_page_writes=on -c synchronous_commit=off"

    bindir = _binaries()
    if bindir is None:
        raise SystemExit("no PostgreSQL: pass --database-url or install postgresql")
    server = DurablePostgres(bindir)
    try:
        pid = int((server.data / "postmaster.pid").read_text().split()[0])
        yield server.fresh_database, pid
    finally:
        close_pools()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument(
        "--batch", type=int, default=500, help="records per execution-agent transaction"
    )
    parser.add_argument("--database-url", default=os.environ.get("REVOPS_DATABASE_URL"))
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="SQLite and PostgreSQL runs, alternated; the ratio printed is the median pair's",
    )
    args = parser.parse_args()
    pairs: list[tuple[dict[str, float], dict[str, float]]] = []
    with postgres(args.database_url) as (new_database, pid):
        for repeat in range(args.repeats):
            first = repeat * (args.flows + 10)
            sqlite = measure("", args.flows, args.batch, None)
            pg = measure(new_database(), args.flows, args.batch, pid, first)
            pairs.append((sqlite, pg))
            print(f"run {repeat + 1}: postgresql / sqlite {ratio(pg, sqlite, 'cpu_ms_per_flow')} x")
    pairs.sort(key=lambda pair: ratio(pair[1], pair[0], "cpu_ms_per_flow"))
    sqlite, pg = pairs[len(pairs) // 2]
    ratios = [ratio(p, q, "cpu_ms_per_flow") for q, p in pairs]
    total = ratio(pg, sqlite, "cpu_ms_per_flow")
    summary = {
        "flows": args.flows,
        "batch": args.batch,
        "repeats": args.repeats,
        "sqlite": sqlite,
        "postgresql": pg,
        "cpu_ratio_pg_sqlite": total,
        "cpu_ratio_pg_sqlite_range": [ratios[0], ratios[-1]],
        "execution_agent_cpu_ratio_pg_sqlite": ratio(pg, sqlite, "execution_agent_cpu_ms_per_flow"),
        "outbox_cpu_ratio_pg_sqlite": ratio(pg, sqlite, "outbox_cpu_ms_per_flow"),
    }
    print(json.dumps(summary))
    for part in ("execution_agent", "outbox"):
        figure = f"{part}_cpu_ms_per_flow"
        print(
            f"{part} cpu per flow: sqlite {sqlite[figure]} ms, postgresql {pg[figure]} ms "
            f"({ratio(pg, sqlite, figure)} x)"
        )
    print(f"sqlite cpu per flow: {sqlite['cpu_ms_per_flow']} ms")
    server = pg["server_cpu_ms_per_flow"]
    print(f"postgresql cpu per flow: {pg['cpu_ms_per_flow']} ms (server {server})")
    print(
        f"postgresql / sqlite: {total} x, median of {args.repeats} runs "
        f"({ratios[0]}-{ratios[-1]}; target: within 1.5 x; batch of {args.batch})"
    )


def ratio(pg: dict[str, float], sqlite: dict[str, float], figure: str) -> float:
    return round(pg[figure] / max(sqlite[figure], 1e-9), 2)


if __name__ == "__main__":
    main()
