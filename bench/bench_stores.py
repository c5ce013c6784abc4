"""CPU per flow of the operational store, SQLite against PostgreSQL.

    .venv/bin/python bench/bench_stores.py [--flows 300] [--database-url postgresql://...]

One flow is the store work the pipeline does for it: the execution agent's decision (insights
upserted, health, history, plan and execution recorded in one transaction), the webhook
processor's outbox (store, claim, attempt, finish, publish mark) for each planned job, and the
execution agent recording each result. CPU is the bench process's plus, for PostgreSQL, the
server's (every backend process), divided by the flows. Without --database-url (or
REVOPS_DATABASE_URL) a throwaway server is started from the machine's PostgreSQL binaries.

The issue's target on a 2-core box: PostgreSQL within 1.5x of SQLite. Figures are noisy on a
shared machine: run it more than once and read the ratio as a range.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts import ActionResult, ActionStatus, AnalysisType, Flag, Subject
from contracts.analysis import AnalysisBody, AnalysisResults, Recommendation, ScoreDetail
from services.common.stores.postgres import close_pools
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import ExecutionAgent
from services.execution_agent.store import open_store
from services.webhook_processor.delivery_log import DELIVERED, DeliveryLog


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


def run_flows(state: Path, url: str, flows: int) -> None:
    agent = ExecutionAgent(open_store(state / "revops.db", url=url), RoutingRules.load())
    outbox = DeliveryLog(state / "deliveries.db", url=url)
    for n in range(flows):
        outcome = agent.handle_decision(analysis(n))
        for job in outcome.jobs:
            outbox.add_job(job)
            row = outbox.next_pending(job.destination, 1, 0)
            assert row is not None
            outbox.set_attempts(row.action_id, 1)
            outbox.record_attempt(row.action_id, job.destination, 1, DELIVERED, 200, 5.0)
            result = ActionResult.of_job(
                job, job.destination, ActionStatus.SUCCESS, response={"ok": True}
            )
            outbox.finish(row.action_id, DELIVERED, [result])
            outbox.mark_published(row.action_id)
            done = agent.handle_action_result(result)
            if done.flow_output is not None:
                agent.flow_published(job.request_id)


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


def measure(url: str, flows: int, server_pid: int | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        run_flows(Path(tmp), url, 5)  # warm-up: imports, schema, prepared statements
        me = psutil.Process()
        before = me.cpu_times()
        server_before = server_cpu_s(server_pid)
        started = time.perf_counter()
        run_flows(Path(tmp) / "run", url, flows)
        wall = time.perf_counter() - started
        after = me.cpu_times()
        server = server_cpu_s(server_pid) - server_before
    client = (after.user - before.user) + (after.system - before.system)
    close_pools()
    return {
        "client_cpu_ms_per_flow": round(client * 1000 / flows, 2),
        "server_cpu_ms_per_flow": round(server * 1000 / flows, 2),
        "cpu_ms_per_flow": round((client + server) * 1000 / flows, 2),
        "wall_ms_per_flow": round(wall * 1000 / flows, 2),
    }


@contextmanager
def postgres(url: str | None) -> Iterator[tuple[str, int | None]]:
    """(DSN, postmaster pid when this machine runs it) of the server to measure."""
    if url:
        yield url, None
        return
    from tests.postgres_server import LocalPostgres, _binaries

    bindir = _binaries()
    if bindir is None:
        raise SystemExit("no PostgreSQL: pass --database-url or install postgresql")
    server = LocalPostgres(bindir)
    try:
        pid = int((server.data / "postmaster.pid").read_text().split()[0])
        yield server.fresh_database(), pid
    finally:
        close_pools()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--database-url", default=os.environ.get("REVOPS_DATABASE_URL"))
    args = parser.parse_args()
    sqlite = measure("", args.flows, None)
    with postgres(args.database_url) as (url, pid):
        pg = measure(url, args.flows, pid)
    ratio = round(pg["cpu_ms_per_flow"] / max(sqlite["cpu_ms_per_flow"], 1e-9), 2)
    print(
        json.dumps(
            {"flows": args.flows, "sqlite": sqlite, "postgresql": pg, "cpu_ratio_pg_sqlite": ratio}
        )
    )
    print(f"sqlite cpu per flow: {sqlite['cpu_ms_per_flow']} ms")
    server = pg["server_cpu_ms_per_flow"]
    print(f"postgresql cpu per flow: {pg['cpu_ms_per_flow']} ms (server {server})")
    print(f"postgresql / sqlite: {ratio} x (target: within 1.5 x)")


if __name__ == "__main__":
    main()
