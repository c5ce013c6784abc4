"""bench.bench_flow_cpu times the real work: every trigger of its demo mix becomes a dataset
record the decision agent reads, and every dataset record a decision, whether the records
are handed over one by one or in groups."""

from __future__ import annotations

from pathlib import Path

import orjson

from bench.bench_flow_cpu import (
    AS_OF,
    demo_triggers,
    run_data_agent,
    run_decision_agent,
    run_execution_agent,
)
from demo.seed import seed_warehouse
from services.common.settings import Settings
from services.data_agent.app import DataAgent
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.decision_agent.app import build_agent
from services.execution_agent.executions import ExecutionRepository, ExecutionStatus
from services.execution_agent.routing import RoutingRules
from services.execution_agent.store import open_store


def _dataset_records(tmp_path: Path, accounts: int, flows: int) -> tuple[Settings, list[bytes]]:
    """The data agent's records for `flows` triggers of the bench's mix on a new warehouse."""
    path = tmp_path / "bench.duckdb"
    seed_warehouse(path, accounts=accounts, days=120, seed=7, as_of=AS_OF)
    settings = Settings(var_dir=tmp_path)
    with DuckDBWarehouse(path) as warehouse:
        repository = DatasetRepository(warehouse)
        items = demo_triggers(repository, flows)
        return settings, run_data_agent(DataAgent(settings, repository), items)


def test_every_flow_of_the_mix_gets_a_dataset_and_a_decision(tmp_path: Path) -> None:
    settings, records = _dataset_records(tmp_path, 30, 60)  # more than one consumed batch
    agent = build_agent(settings)
    decisions = run_decision_agent(agent, records, 1)
    grouped = run_decision_agent(agent, records, 25)  # groups of both analyses
    assert len(records) == len(decisions) == len(grouped) == 60
    assert [orjson.loads(d)["payload"] for d in grouped] == [
        orjson.loads(d)["payload"] for d in decisions
    ]
    payloads = [orjson.loads(r)["payload"] for r in records]
    assert {p["schema_version"] for p in payloads} == {2}
    assert {p["analysis_type"] for p in payloads} == {"deal_quality", "consumption"}
    assert [p["request_id"] for p in payloads] == [f"bench-{i}" for i in range(60)]
    assert all(orjson.loads(d)["metadata"]["target_agent"] == "execution_agent" for d in decisions)


def test_the_execution_agent_finishes_every_flow_in_groups_of_any_size(tmp_path: Path) -> None:
    settings, records = _dataset_records(tmp_path, 20, 20)
    decisions = run_decision_agent(build_agent(settings), records, 10)
    routing = RoutingRules.load(settings.routing_file)
    alone = run_execution_agent(decisions, 1, tmp_path / "alone", routing)
    grouped = run_execution_agent(decisions, 10, tmp_path / "grouped", routing)
    assert alone.results_per_flow == grouped.results_per_flow > 0
    # one transaction per group: fewer statements per flow in groups
    assert alone.statements_per_flow > grouped.statements_per_flow > 0
    for state in ("alone", "grouped"):
        executions = ExecutionRepository(open_store(tmp_path / state / "revops.db", url=""))
        for k in range(20):
            execution = executions.get(f"bench-{k}")
            assert execution.execution_status is ExecutionStatus.COMPLETE
            assert execution.state.is_complete()
