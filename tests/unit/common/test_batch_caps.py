"""Each stage's largest consumed batch: what a batch holds until its outputs are acknowledged
bounds the service's memory (the RSS target at saturation, docs/batch-pipeline.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from demo.seed import seed_warehouse
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.data_agent import app as data_agent
from services.decision_agent import app as decision_agent
from services.execution_agent import app as execution_agent


def _caps(runtime: ServiceRuntime) -> dict[str, int]:
    return {topic: sub.max_records for topic, sub in runtime.subscriptions.items()}


def test_stages_that_hold_large_records_consume_smaller_batches(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path, database_url=None, signing_enabled=False, warehouse_replica=False
    )
    seed_warehouse(settings.resolved_warehouse_path, accounts=5, days=120, seed=3)
    topics = settings.topics
    assert settings.batch_max_records == 500

    data = asyncio.run(data_agent.build_runtime(settings, None))
    assert _caps(data) == {topics.triggers: data_agent.READ_AHEAD_SUBJECTS} == {topics.triggers: 50}

    decision = asyncio.run(decision_agent.build_runtime(settings, None))
    assert _caps(decision) == {topics.datasets: 100}

    execution = asyncio.run(execution_agent.build_runtime(settings, None))
    assert _caps(execution) == {topics.decisions: 100, topics.action_results: 500}
