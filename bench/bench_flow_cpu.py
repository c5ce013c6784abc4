"""CPU per flow of the data, decision and execution agents, in process, without Kafka.

Run: `.venv/bin/python -m bench.bench_flow_cpu [--accounts N] [--flows N] [--repeats R]`.

A generated demo warehouse (`--accounts` accounts, a year of usage) and `--flows` triggers of
the demo mix (half deal-quality on an open deal, half consumption on an account). Each run:

* data agent: `DataAgent.handle_batch` on the parsed triggers in consumed batches of
  READ_AHEAD_SUBJECTS (one set-based warehouse read per batch, the datasets built, each
  dataset record encoded as the runtime encodes it);
* decision agent: for each dataset record, `parse_dataset` (JSON, envelope, the payload
  validated once: the trust boundary), then `DecisionAgent.handle_batch` (the analysis, no
  language model) on groups of records as the runtime hands them over, and each decision
  record encoded. Two group sizes: 1 (an idle pipeline: each record consumed alone) and a
  partition's share of a full consumed batch (`batch_max_records / topic_partitions`, a
  saturated pipeline), where the consumption datasets of a group are analysed together.
  The objects built before are frozen out of the cyclic collector's sight first, as the
  service does at start-up (`build_runtime`).
* execution agent: the decision records parsed as its consumer parses them, then
  `ExecutionAgent.handle_decisions` (insights, health, history, the plan, the execution row)
  and, for every job planned, a successful delivery result through `handle_action_results`
  (the result on the execution and on its insight, the flow output once the last one is
  in), right after its group of decisions, as they come back from the webhook processor;
  both in groups of 1 and of a partition's share of a batch; a fresh SQLite store per run.
  Its SQL statements per flow are counted too (each group is one transaction).

CPU is the process's (`time.process_time`, DuckDB's threads included) divided by the flows;
no signing, idempotency store or broker (the runtime's share, `bench.overhead`). The box is
shared: each figure is printed as the min-max over `--repeats` runs after a warm-up run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from contracts import ActionResult, AnalysisResults, AnalysisType, RawTrigger
from contracts.actions import ActionStatus
from contracts.trigger import TriggerParameters, TriggerType
from demo.seed import seed_warehouse
from services.common.gc_tuning import freeze_start_up, thaw
from services.common.messages import encode, envelope_parser
from services.common.records import Parsed, Record
from services.common.settings import Settings
from services.common.stores.database import Database
from services.common.stores.sqlite import SQLiteDatabase
from services.data_agent.app import READ_AHEAD_SUBJECTS, DataAgent
from services.data_agent.builders import open_opportunities
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.decision_agent.app import DecisionAgent, build_agent, parse_dataset
from services.execution_agent.app import NAME as EXECUTION_AGENT
from services.execution_agent.app import decision_of
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import BatchResult, ExecutionAgent, HandlerOutput
from services.execution_agent.store import open_store

AS_OF = date(2025, 6, 30)
ACCEPTED_MS = int(datetime(2025, 6, 30, 8, tzinfo=UTC).timestamp() * 1000)
_T = TypeVar("_T")


def demo_triggers(repository: DatasetRepository, flows: int) -> list[tuple[Parsed, Record]]:
    """The demo mix as the data agent's parser hands it over: (trigger, request id)."""
    deals = open_opportunities(repository.warehouse, repository.stages)
    accounts = sorted({a for a, _ in deals})
    items = []
    for i in range(flows):
        if i % 2 == 0:
            account_id, opportunity_id = deals[(i // 2) % len(deals)]
            parameters = TriggerParameters(
                account_id=account_id,
                opportunity_id=opportunity_id,
                analysis_type=AnalysisType.DEAL_QUALITY,
            )
        else:
            account_id = accounts[(i // 2) % len(accounts)]
            parameters = TriggerParameters(
                account_id=account_id, analysis_type=AnalysisType.CONSUMPTION
            )
        request_id = f"bench-{i}"
        trigger = RawTrigger(
            trigger_type=TriggerType.SCHEDULED, parameters=parameters, request_id=request_id
        )
        record = Record("revops.triggers", 0, i, account_id.encode(), None, (), ACCEPTED_MS)
        items.append((Parsed(f"trigger:{request_id}", (trigger, request_id)), record))
    return items


def run_data_agent(agent: DataAgent, items: Sequence[tuple[Parsed, Record]]) -> list[bytes]:
    """The dataset records of `items`, consumed in batches as the service consumes them."""
    records: list[bytes] = []
    for start in range(0, len(items), READ_AHEAD_SUBJECTS):
        outcomes = asyncio.run(agent.handle_batch(items[start : start + READ_AHEAD_SUBJECTS]))
        for outcome in outcomes:
            if not isinstance(outcome, list):
                raise RuntimeError(f"a demo trigger failed: {outcome!r}")
            records.extend(encode(out.message) for out in outcome)
    return records


async def _decide_all(agent: DecisionAgent, records: Sequence[bytes], group: int) -> list[bytes]:
    decisions: list[bytes] = []
    for start in range(0, len(records), group):
        consumed = [
            Record("revops.datasets", 0, offset, b"", value)
            for offset, value in enumerate(records[start : start + group], start=start)
        ]
        outcomes = await agent.handle_batch([(parse_dataset(r), r) for r in consumed])
        for outcome in outcomes:
            if not isinstance(outcome, list):
                raise RuntimeError(f"a demo dataset failed: {outcome!r}")
            decisions.extend(encode(out.message) for out in outcome)
    return decisions


def run_decision_agent(agent: DecisionAgent, records: Sequence[bytes], group: int) -> list[bytes]:
    return asyncio.run(_decide_all(agent, records, group))


@dataclass(frozen=True)
class ExecutionRun:
    decisions_ms: float  # CPU per flow
    results_ms: float
    results_per_flow: float
    statements_per_flow: float


def run_execution_agent(
    decisions: Sequence[bytes], group: int, state: Path, routing: RoutingRules
) -> ExecutionRun:
    """The execution agent's two handlers on `decisions`, in groups of `group` records, on a
    new store in `state`; then a successful result for every job planned."""
    parse = envelope_parser(AnalysisResults, EXECUTION_AGENT)
    parsed = [
        parse(Record("revops.decisions", 0, offset, b"", value))
        for offset, value in enumerate(decisions)
    ]
    store = open_store(state / "revops.db", url="")
    statements = _count_statements(store)
    agent = ExecutionAgent(store, routing)
    deciding = resulting = 0.0
    results = 0
    try:
        batch = [(item.body.subject.account_id, decision_of(item)) for item in parsed]
        # Each group's results right after it, as they come back from the webhook processor
        for start in range(0, len(batch), group):
            started = time.process_time()
            jobs = [
                job
                for outcome in _in_groups(
                    agent.handle_decisions, batch[start : start + group], group
                )
                for job in outcome.jobs
            ]
            decided = time.process_time()
            delivered = [
                (job.account_id, ActionResult.of_job(job, "bench", ActionStatus.SUCCESS))
                for job in jobs
            ]
            recorded = time.process_time()
            _in_groups(agent.handle_action_results, delivered, group)
            deciding += decided - started
            resulting += time.process_time() - recorded
            results += len(delivered)
    finally:
        store.close()
    flows = len(decisions)
    return ExecutionRun(
        deciding * 1000 / flows, resulting * 1000 / flows, results / flows, statements[0] / flows
    )


def _in_groups(
    handle: Callable[[Sequence[_T]], list[BatchResult]], items: Sequence[_T], group: int
) -> list[HandlerOutput]:
    outputs = []
    for start in range(0, len(items), group):
        for outcome in handle(items[start : start + group]):
            if isinstance(outcome, BaseException):
                raise RuntimeError(f"a demo flow failed in the execution agent: {outcome!r}")
            outputs.append(outcome)
    return outputs


def _count_statements(store: Database) -> list[int]:
    """A counter of the SQL statements this thread's SQLite connection runs from now on
    (the handlers run on the calling thread here)."""
    count = [0]

    def one(_: str) -> None:
        count[0] += 1

    assert isinstance(store, SQLiteDatabase)
    store.connect().set_trace_callback(one)
    return count


def cpu_ms_per_flow(work: object, flows: int) -> float:
    assert callable(work)
    started = time.process_time()
    work()
    return (time.process_time() - started) * 1000 / flows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--flows", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        seed_warehouse(path, accounts=args.accounts, days=365, seed=7, as_of=AS_OF)
        with DuckDBWarehouse(path) as warehouse:
            repository = DatasetRepository(warehouse)
            repository.default_as_of()  # read once per process, as in the service
            data_agent = DataAgent(settings, repository)
            decision_agent = build_agent(settings)
            if decision_agent.ai is not None:
                raise SystemExit("unset the language model settings: this bench times rules")
            items = demo_triggers(repository, args.flows)
            records = run_data_agent(data_agent, items)  # warm-up, and the decisions' input
            data = [
                cpu_ms_per_flow(lambda: run_data_agent(data_agent, items), len(items))
                for _ in range(args.repeats)
            ]
            groups = (1, max(1, settings.batch_max_records // settings.topic_partitions))
            freeze_start_up()  # as a service does once it is built
            decision: dict[int, list[float]] = {}
            for group in groups:
                run_decision_agent(decision_agent, records, group)  # warm-up
                decision[group] = [
                    cpu_ms_per_flow(
                        partial(run_decision_agent, decision_agent, records, group), len(records)
                    )
                    for _ in range(args.repeats)
                ]
            decisions = run_decision_agent(decision_agent, records, groups[-1])
            routing = RoutingRules.load(settings.routing_file)
            execution: dict[int, list[ExecutionRun]] = {}
            for group in groups:
                runs = [
                    run_execution_agent(decisions, group, Path(folder) / f"g{group}-{k}", routing)
                    for k in range(args.repeats + 1)
                ]
                execution[group] = runs[1:]  # the first warms up
            thaw()
    kib = sum(map(len, records)) / len(records) / 1024
    print(
        f"CPU per flow, {len(items)} flows of the demo mix, {args.accounts} accounts, "
        f"{args.repeats} runs, min-max (dataset record {kib:.0f} KiB on average)"
    )
    print(f"| data agent | {min(data):.2f}-{max(data):.2f} ms |")
    for group, figures in decision.items():
        print(
            f"| decision agent, groups of {group} record(s) | "
            f"{min(figures):.2f}-{max(figures):.2f} ms |"
        )
    for group, runs in execution.items():
        total = [r.decisions_ms + r.results_ms for r in runs]
        first = runs[0]
        print(
            f"| execution agent, groups of {group} record(s) | "
            f"{min(total):.2f}-{max(total):.2f} ms (decisions "
            f"{min(r.decisions_ms for r in runs):.2f}-{max(r.decisions_ms for r in runs):.2f}, "
            f"{first.results_per_flow:.1f} results "
            f"{min(r.results_ms for r in runs):.2f}-{max(r.results_ms for r in runs):.2f}; "
            f"{first.statements_per_flow:.1f} SQL statements) |"
        )


if __name__ == "__main__":
    main()
