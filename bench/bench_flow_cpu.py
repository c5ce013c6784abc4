"""CPU per flow of the data agent and the decision agent, in process, without Kafka.

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

CPU is the process's (`time.process_time`, DuckDB's threads included) divided by the flows;
no signing, idempotency store or broker (the runtime's share, `bench.overhead`). The box is
shared: each figure is printed as the min-max over `--repeats` runs after a warm-up run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

from contracts import AnalysisType, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from demo.seed import seed_warehouse
from services.common.messages import encode
from services.common.records import Parsed, Record
from services.common.settings import Settings
from services.data_agent.app import READ_AHEAD_SUBJECTS, DataAgent
from services.data_agent.builders import open_opportunities
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.decision_agent.app import DecisionAgent, build_agent, parse_dataset

AS_OF = date(2025, 6, 30)
ACCEPTED_MS = int(datetime(2025, 6, 30, 8, tzinfo=UTC).timestamp() * 1000)


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
            gc.freeze()  # as the decision agent's service does once it is built
            decision: dict[int, list[float]] = {}
            for group in groups:
                run_decision_agent(decision_agent, records, group)  # warm-up
                decision[group] = [
                    cpu_ms_per_flow(
                        partial(run_decision_agent, decision_agent, records, group), len(records)
                    )
                    for _ in range(args.repeats)
                ]
            gc.unfreeze()
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


if __name__ == "__main__":
    main()
