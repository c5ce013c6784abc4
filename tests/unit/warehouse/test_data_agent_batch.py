"""`DataAgent.handle_batch` (the batch-handler contract of services/common/records.py) on the
generated warehouse: per record, the outputs `handle` gives or the error it raises; later
records of a failed record's Kafka key deferred; one set-based read for the whole batch."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Iterator
from typing import Any

import pytest

from contracts import AnalysisType, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from services.common.errors import PermanentError
from services.common.records import BatchOutcome, Deferred, Outgoing, Parsed, Record
from services.common.settings import Settings
from services.data_agent import app
from services.data_agent.app import DataAgent, parse_trigger
from services.data_agent.builders import DATASET_BUILDERS, open_opportunities
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse.base import Columns, Params, Row, WarehouseError
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
from services.data_agent.warehouse.queries import FLEET_SCREEN, META, SET_QUERIES, Query

from .conftest import Demo


class CountingWarehouse(DuckDBWarehouse):
    """The demo warehouse, counting the queries run by name (and failing on demand)."""

    def __init__(self, demo: Demo) -> None:
        super().__init__(demo.path)
        self.queries: Counter[str] = Counter()
        self.fail_on: str | None = None

    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        self.queries[query.name] += 1
        if query.name == self.fail_on:
            raise WarehouseError(f"query {query.name} failed: engine unreachable")
        return super().fetch_all(query, params)

    def fetch_chunks(
        self, query: Query, params: Params | None = None, chunk_rows: int = 10_000
    ) -> Iterator[list[Row]]:
        self.queries[query.name] += 1
        return super().fetch_chunks(query, params, chunk_rows)

    def fetch_columns(self, query: Query, params: Params | None = None) -> Columns:
        self.queries[query.name] += 1
        if query.name == self.fail_on:
            raise WarehouseError(f"query {query.name} failed: engine unreachable")
        return super().fetch_columns(query, params)


@pytest.fixture
def warehouse(demo: Demo) -> Iterator[CountingWarehouse]:
    wh = CountingWarehouse(demo)
    yield wh
    wh.close()


@pytest.fixture
def agent(warehouse: CountingWarehouse) -> DataAgent:
    repository = DatasetRepository(warehouse)
    repository.default_as_of()  # the warehouse's day, read once (not part of a batch)
    return DataAgent(Settings(), repository)


def trigger_record(
    offset: int, analysis: AnalysisType, account: str | None, deal: str | None = None
) -> tuple[Parsed, Record]:
    trigger = RawTrigger(
        trigger_type=TriggerType.MANUAL,
        parameters=TriggerParameters(
            account_id=account, opportunity_id=deal, analysis_type=analysis
        ),
        request_id=f"batch-{offset}",
    )
    record = Record(
        "revops.triggers",
        0,
        offset,
        (account or "").encode() or None,
        trigger.model_dump_json().encode(),
        timestamp_ms=1_751_000_000_000 + offset,
    )
    return parse_trigger(record), record


def handled_alone(agent: DataAgent, item: Parsed, record: Record) -> list[Outgoing] | Exception:
    try:
        return asyncio.run(agent.handle(item, record))
    except Exception as exc:
        return exc


def same(outcome: BatchOutcome, alone: list[Outgoing] | Exception) -> None:
    """The batch's outcome for a record is what `handle` gives for it alone."""
    if isinstance(alone, Exception):
        assert isinstance(outcome, PermanentError) and isinstance(alone, PermanentError)
        assert (outcome.code, str(outcome)) == (alone.code, str(alone))
        return
    assert isinstance(outcome, list)
    assert [(o.topic, o.key, o.audience) for o in outcome] == [
        (o.topic, o.key, o.audience) for o in alone
    ]
    assert [content(o) for o in outcome] == [content(o) for o in alone]


def content(out: Outgoing) -> dict[str, Any]:
    """What a record says, without when it was made."""
    message: dict[str, Any] = out.message.model_dump(mode="json")
    message.get("metadata", {}).pop("timestamp", None)
    return message


def test_a_mixed_batch_answers_per_record_as_handle_does(
    demo: Demo, agent: DataAgent, warehouse: CountingWarehouse
) -> None:
    deals = open_opportunities(warehouse, agent.repository.stages)[:6]
    accounts = sorted(demo.truth["accounts"])[:6]
    other_deal = next(o for a, o in deals if a != accounts[5])
    items = [
        *(trigger_record(i, AnalysisType.DEAL_QUALITY, a, o) for i, (a, o) in enumerate(deals)),
        trigger_record(10, AnalysisType.CONSUMPTION, accounts[0]),
        trigger_record(11, AnalysisType.RENEWAL_RISK, accounts[1]),
        trigger_record(12, AnalysisType.CONSUMPTION, "001UNKNOWN"),  # unknown account
        trigger_record(13, AnalysisType.DEAL_QUALITY, accounts[5], other_deal),  # not its deal
        trigger_record(14, AnalysisType.CONSUMPTION, accounts[2]),
        trigger_record(15, AnalysisType.DEAL_QUALITY, accounts[3], "006UNKNOWN"),
        trigger_record(16, AnalysisType.FLEET_SCAN, None),  # a job in the batch
    ]
    warehouse.queries.clear()
    outcomes = asyncio.run(agent.handle_batch(items))
    batch_queries = Counter(warehouse.queries)
    assert len(outcomes) == len(items)
    for (item, record), outcome in zip(items, outcomes, strict=True):
        same(outcome, handled_alone(agent, item, record))
    codes = [o.code for o in outcomes if isinstance(o, PermanentError)]
    assert codes == ["UNKNOWN_SUBJECT"] * 3
    assert "belongs to account" in str(outcomes[9])
    fleet = outcomes[-1]
    assert isinstance(fleet, list) and fleet and all(o.topic == "revops.triggers" for o in fleet)
    # One set-based query per table for the 11 subjects (the demo has no product catalog,
    # so no product is looked up), plus the fleet screen and the day it screens.
    assert batch_queries == Counter(
        {name: 1 for name in SET_QUERIES if name != "products_by_ids"}
        | {"won_time_by_stage": 1, "won_time_by_segment": 1, "fleet_screen": 1, "meta": 1}
    )
    # The records alone: a handful of queries per subject.
    alone = warehouse.queries - batch_queries
    assert alone["usage_by_account"] == 9 and alone["account_by_id"] >= 10  # 6 deals, 3 accounts


def test_a_failed_record_defers_the_later_records_of_its_key(demo: Demo, agent: DataAgent) -> None:
    a, b = sorted(demo.truth["accounts"])[:2]
    items = [
        trigger_record(0, AnalysisType.CONSUMPTION, a),
        trigger_record(1, AnalysisType.DEAL_QUALITY, b, "006UNKNOWN"),  # fails: key b
        trigger_record(2, AnalysisType.CONSUMPTION, a),
        trigger_record(3, AnalysisType.CONSUMPTION, b),  # after the failure of key b
        trigger_record(4, AnalysisType.RENEWAL_RISK, b),
    ]
    outcomes = asyncio.run(agent.handle_batch(items))
    assert [type(o).__name__ for o in outcomes] == [
        "list",
        "PermanentError",
        "list",
        "Deferred",
        "Deferred",
    ]
    assert isinstance(outcomes[3], Deferred)
    same(outcomes[2], handled_alone(agent, *items[2]))


def test_an_analysis_type_without_a_dataset_is_refused_per_record(
    demo: Demo, agent: DataAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(DATASET_BUILDERS, AnalysisType.CONSUMPTION)
    a, b = sorted(demo.truth["accounts"])[:2]
    items = [
        trigger_record(0, AnalysisType.CONSUMPTION, a),
        trigger_record(1, AnalysisType.RENEWAL_RISK, b),
    ]
    refused, served = asyncio.run(agent.handle_batch(items))
    assert isinstance(refused, PermanentError) and refused.code == "UNKNOWN_ANALYSIS"
    same(refused, handled_alone(agent, *items[0]))
    assert isinstance(served, list) and len(served) == 1


def test_a_warehouse_that_cannot_answer_fails_the_whole_call(
    demo: Demo, agent: DataAgent, warehouse: CountingWarehouse
) -> None:
    """Not a record's fault: the runtime then handles each record on its own (retries)."""
    a, b = sorted(demo.truth["accounts"])[:2]
    warehouse.fail_on = "usage_by_accounts"
    items = [
        trigger_record(0, AnalysisType.CONSUMPTION, a),
        trigger_record(1, AnalysisType.CONSUMPTION, b),
    ]
    with pytest.raises(WarehouseError, match="usage_by_accounts"):
        asyncio.run(agent.handle_batch(items))
    # A batch of one reads per subject: the failure is that record's, as in `handle`.
    warehouse.fail_on = "usage_by_account"
    [failed] = asyncio.run(agent.handle_batch(items[:1]))
    assert isinstance(failed, WarehouseError) and "usage_by_account " in str(failed)


def test_a_job_publishes_all_its_child_triggers_as_one_output_list(
    demo: Demo, agent: DataAgent, warehouse: CountingWarehouse
) -> None:
    """A deal review's child triggers: the outputs of its one record, handed to the
    runtime together (produced pipelined, acknowledged together), keyed by account."""
    [outcome] = asyncio.run(agent.handle_batch([trigger_record(0, AnalysisType.DEAL_REVIEW, None)]))
    assert isinstance(outcome, list)
    expected = open_opportunities(warehouse, agent.repository.stages)
    children: list[dict[str, Any]] = [o.message.model_dump(mode="json") for o in outcome]
    assert [
        (o.key, c["parameters"]["opportunity_id"]) for o, c in zip(outcome, children, strict=True)
    ] == [(a, o) for a, o in expected]
    assert {c["parameters"]["analysis_type"] for c in children} == {"deal_quality"}
    assert len({c["request_id"] for c in children}) == len(expected)


def test_a_batch_of_one_reads_as_one_record_does(
    demo: Demo, agent: DataAgent, warehouse: CountingWarehouse
) -> None:
    """One subject costs fewer queries one table at a time than set-based (a quiet topic
    hands the handler one record at a time): the per-subject queries, the same dataset."""
    items = [trigger_record(0, AnalysisType.CONSUMPTION, sorted(demo.truth["accounts"])[0])]
    warehouse.queries.clear()
    [outcome] = asyncio.run(agent.handle_batch(items))
    assert not set(warehouse.queries) & set(SET_QUERIES)
    assert warehouse.queries["account_by_id"] == 1 and warehouse.queries["usage_by_account"] == 1
    same(outcome, handled_alone(agent, *items[0]))


def test_a_large_batch_is_read_in_slices(
    demo: Demo, agent: DataAgent, warehouse: CountingWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice's rows and models are held at once: a batch larger than a slice is read
    slice by slice, with the same outcomes."""
    monkeypatch.setattr(app, "READ_AHEAD_SUBJECTS", 3)
    accounts = sorted(demo.truth["accounts"])[:8]
    items = [trigger_record(i, AnalysisType.CONSUMPTION, a) for i, a in enumerate(accounts)]
    warehouse.queries.clear()
    outcomes = asyncio.run(agent.handle_batch(items))
    assert warehouse.queries["accounts_by_ids"] == 3  # 3 + 3 + 2 subjects
    assert warehouse.queries["account_by_id"] == 0
    for (item, record), outcome in zip(items, outcomes, strict=True):
        same(outcome, handled_alone(agent, item, record))


class ThreadRecordingWarehouse(CountingWarehouse):
    """Which thread ran each query (by query name)."""

    def __init__(self, demo: Demo) -> None:
        super().__init__(demo)
        self.threads: dict[str, set[str]] = {}

    def _ran(self, query: Query) -> None:
        self.threads.setdefault(query.name, set()).add(threading.current_thread().name)

    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        self._ran(query)
        return super().fetch_all(query, params)

    def fetch_chunks(
        self, query: Query, params: Params | None = None, chunk_rows: int = 10_000
    ) -> Iterator[list[Row]]:
        self._ran(query)
        return super().fetch_chunks(query, params, chunk_rows)

    def fetch_columns(self, query: Query, params: Params | None = None) -> Columns:
        self._ran(query)
        return super().fetch_columns(query, params)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "reader-thread"])
def test_concurrent_batches_read_the_warehouse_on_one_thread(demo: Demo, inline: bool) -> None:
    """The runtime hands a batch's partition groups over at once: their reads (a batch, a
    record alone) run in the event loop's own thread (`REVOPS_EMBEDDED_WORK_INLINE`, the
    default for the embedded warehouse) or queue on the agent's one reader thread, never
    spread over asyncio's pool, where each thread would keep DuckDB's per-thread memory. A
    job's fleet-wide query runs on the reader thread either way (it may take seconds)."""
    warehouse = ThreadRecordingWarehouse(demo)
    try:
        repository = DatasetRepository(warehouse)
        repository.default_as_of()  # read once at start-up, on the main thread
        agent = DataAgent(Settings(embedded_work_inline=inline), repository)
        warehouse.threads.clear()
        accounts = sorted(demo.truth["accounts"])[:12]
        groups = [
            [trigger_record(g * 3 + i, AnalysisType.CONSUMPTION, a) for i, a in enumerate(part)]
            for g, part in enumerate(accounts[k : k + 3] for k in range(0, 12, 3))
        ]

        async def concurrently() -> tuple[str, list[Any]]:
            calls: list[Awaitable[Any]] = [agent.handle_batch(group) for group in groups]
            calls.append(agent.handle(*trigger_record(90, AnalysisType.CONSUMPTION, accounts[0])))
            calls.append(agent.handle(*trigger_record(91, AnalysisType.FLEET_SCAN, None)))
            return threading.current_thread().name, await asyncio.gather(*calls)

        loop_thread, (*batches, alone, jobs) = asyncio.run(concurrently())
        assert all(isinstance(o, list) and len(o) == 1 for b in batches for o in b)
        assert len(alone) == 1 and jobs
        # the job: the warehouse's day and the fleet screen
        job_threads = warehouse.threads.pop(META.name) | warehouse.threads.pop(FLEET_SCREEN.name)
        assert len(job_threads) == 1
        assert next(iter(job_threads)).startswith(app.READER_THREAD)
        dataset_threads = set().union(*warehouse.threads.values())
        assert dataset_threads == ({loop_thread} if inline else job_threads)
    finally:
        warehouse.close()


def test_a_warehouse_server_is_read_on_the_reader_thread(warehouse: CountingWarehouse) -> None:
    """Firebolt answers over the network: its reads stay off the event loop's thread."""
    repository = DatasetRepository(warehouse)
    assert DataAgent(Settings(), repository)._reader.inline
    assert not DataAgent(Settings(warehouse_backend="firebolt"), repository)._reader.inline
    assert not DataAgent(Settings(embedded_work_inline=False), repository)._reader.inline
