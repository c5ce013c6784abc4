"""The data agent's row-store copy answers the subject reads exactly as DuckDB does.

On the generated warehouse: every served query, for every subject (and ones that do not
exist), on the warehouse's day and earlier days, returns the same rows with the same Python
types; the datasets built on the copy, one subject at a time and in a batch, equal those built
on DuckDB; other queries go to DuckDB. The copy is reused while the source file is unchanged
and made again when it changes; a source it cannot hold faithfully (NaN) is read directly.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import structlog

from services.common.settings import Settings
from services.data_agent.datasets import DatasetRepository
from services.data_agent.reads import Window
from services.data_agent.warehouse import open_service_warehouse
from services.data_agent.warehouse import queries as Q
from services.data_agent.warehouse.base import Columns, Params, Row
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
from services.data_agent.warehouse.replica import (
    SERVED_QUERIES,
    ReplicaCancelled,
    ReplicatedWarehouse,
    ReplicaUnavailable,
    open_replica,
    translate,
)

from .conftest import AS_OF, Demo
from .test_set_based_datasets import per_subject, subjects

DAYS = [AS_OF, AS_OF - timedelta(days=45), AS_OF - timedelta(days=210)]

PER_SUBJECT = {
    "account_id": (
        Q.ACCOUNT_BY_ID,
        Q.CONTACTS_BY_ACCOUNT,
        Q.CALLS_BY_ACCOUNT,
        Q.USAGE_BY_ACCOUNT,
        Q.TICKETS_BY_ACCOUNT,
        Q.AGREEMENTS_BY_ACCOUNT,
        Q.BILLING_BY_ACCOUNT,
    ),
    "opportunity_id": (
        Q.OPPORTUNITY_BY_ID,
        Q.STAGE_HISTORY_BY_OPPORTUNITY,
        Q.CALLS_BY_OPPORTUNITY,
    ),
    "user_id": (Q.EMPLOYEE_BY_ID,),
    "product_id": (Q.PRODUCT_BY_ID,),
}
SET_BY_SUBJECT = {
    "account_id": [
        q
        for q in Q.SET_QUERIES.values()
        if q.column == "sf_account_id" and q.name != "calls_by_opportunities"
    ],
    "opportunity_id": [
        Q.OPPORTUNITIES_BY_IDS,
        Q.STAGE_HISTORY_BY_OPPORTUNITIES,
        Q.CALLS_BY_OPPORTUNITIES,
    ],
    "user_id": [Q.EMPLOYEES_BY_IDS],
    "product_id": [Q.PRODUCTS_BY_IDS],
}


class CountingSource(DuckDBWarehouse):
    """DuckDB, counting what reaches it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.asked: list[str] = []

    def fetch_all(self, query: Q.Query, params: Params | None = None) -> list[Row]:
        self.asked.append(query.name)
        return super().fetch_all(query, params)

    def fetch_columns(self, query: Q.Query, params: Params | None = None) -> Columns:
        self.asked.append(query.name)
        return super().fetch_columns(query, params)


@pytest.fixture(scope="module")
def replicated(
    demo: Demo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReplicatedWarehouse]:
    source = CountingSource(demo.path)
    folder = tmp_path_factory.mktemp("replica")
    warehouse = ReplicatedWarehouse(
        source, lambda stopping: open_replica(source, demo.path, folder, stopping)
    )
    assert warehouse.wait_ready(120)
    yield warehouse
    warehouse.close()


def typed(rows: list[Row]) -> list[list[tuple[str, type, Any]]]:
    """Rows with each value's type: 5 and 5.0, or a date and its text, must differ."""
    return [[(name, type(value), value) for name, value in row.items()] for row in rows]


def ids(demo: Demo) -> dict[str, list[str]]:
    opportunities = demo.sql("SELECT opportunity_id, owner_id, product_id FROM opportunity_d")
    owners = demo.sql("SELECT sf_owner_id FROM salesforce_account_d")
    return {
        "account_id": [*sorted(demo.truth["accounts"]), "001NOSUCHACCOUNT"],
        "opportunity_id": [*sorted(str(o) for o, _, _ in opportunities), "006NOSUCHDEAL"],
        "user_id": sorted(
            {str(u) for _, u, _ in opportunities if u} | {str(u) for (u,) in owners if u}
        ),
        "product_id": [*sorted({str(p) for _, _, p in opportunities if p}), "01tNOSUCH"],
    }


def var_with_warehouse(demo: Demo, var: Path) -> Path:
    """A service's var folder holding a copy of the generated warehouse (its path)."""
    path = var / "warehouse" / "demo.duckdb"
    path.parent.mkdir(parents=True)
    shutil.copy(demo.path, path)
    return path


def window_params(day: date) -> dict[str, Any]:
    window = Window(day)
    return {
        "before_ts": window.before_ts,
        "as_of": day,
        "after_date": day - timedelta(days=365),
    }


@pytest.mark.parametrize("day", DAYS, ids=[d.isoformat() for d in DAYS])
def test_every_served_query_returns_what_duckdb_returns(
    demo: Demo, replicated: ReplicatedWarehouse, day: date
) -> None:
    source = replicated.source
    every = ids(demo)
    rows_seen = 0
    for subject, queries in PER_SUBJECT.items():
        for query in queries:
            for value in every[subject]:
                params = {**window_params(day), subject: value}
                params = {k: params[k] for k in query.param_names}
                want = source.fetch_all(query, params)
                assert typed(replicated.fetch_all(query, params)) == typed(want), (
                    query.name,
                    value,
                )
                rows_seen += len(want)
    for subject, set_queries in SET_BY_SUBJECT.items():
        for set_query in set_queries:
            sql, bound = set_query.for_ids(every[subject])
            params = {**window_params(day), **bound}
            params = {k: params[k] for k in sql.param_names}
            want = source.fetch_all(sql, params)
            assert typed(replicated.fetch_all(sql, params)) == typed(want), set_query.name
            assert replicated.fetch_columns(sql, params) == source.fetch_columns(sql, params)
            chunks = [row for chunk in replicated.fetch_chunks(sql, params, 7) for row in chunk]
            assert typed(chunks) == typed(want), set_query.name
    # Not vacuous: every table has rows for these subjects on this day.
    assert rows_seen > 1000
    served = {q.name for qs in PER_SUBJECT.values() for q in qs}
    served |= {q.name for qs in SET_BY_SUBJECT.values() for q in qs}
    assert served == SERVED_QUERIES


@pytest.mark.parametrize("day", DAYS[:2], ids=[d.isoformat() for d in DAYS[:2]])
def test_datasets_on_the_copy_equal_those_on_duckdb(
    demo: Demo, replicated: ReplicatedWarehouse, day: date
) -> None:
    deals, accounts = subjects(demo, unnamed_accounts=day == AS_OF)
    want = per_subject(DatasetRepository(replicated.source), deals, accounts, day)
    on_copy = DatasetRepository(replicated)
    assert per_subject(on_copy, deals, accounts, day) == want
    batch = on_copy.reading_ahead(deals=deals, accounts=accounts, as_of=day)
    assert per_subject(batch, deals, accounts, day) == want
    assert sum(o[0] != "error" for o in want) > len(want) // 3


def test_queries_the_copy_does_not_serve_go_to_duckdb(replicated: ReplicatedWarehouse) -> None:
    source = replicated.source
    assert isinstance(source, CountingSource)
    source.asked.clear()
    replicated.fetch_all(Q.ACCOUNT_BY_ID, {"account_id": "001NOSUCHACCOUNT"})
    replicated.fetch_columns(
        Q.USAGE_BY_ACCOUNT, {"account_id": "x", "after_date": AS_OF, "as_of": AS_OF}
    )
    assert source.asked == []
    listed = replicated.fetch_all(Q.LIST_ACCOUNTS, {"limit": 5})
    meta = replicated.fetch_all(Q.META)
    coverage = replicated.fetch_all(Q.HISTORY_COVERAGE)
    assert source.asked == ["list_accounts", "meta", "history_coverage"]
    assert len(listed) == 5 and meta and coverage


def test_translate_binds_casts_as_the_copy_stores_them_and_sorts_nulls_last() -> None:
    sql, kinds = translate(
        "SELECT a FROM t WHERE k = ? AND d > CAST(? AS DATE) AND ts < CAST(? AS TIMESTAMP) "
        "ORDER BY k, ts"
    )
    assert sql == (
        "SELECT a FROM t WHERE k = ? AND d > ? AND ts < ? ORDER BY k NULLS LAST, ts NULLS LAST"
    )
    assert kinds == (None, "DATE", "TIMESTAMP")


def test_the_copy_is_reused_until_the_source_file_changes(demo: Demo, tmp_path: Path) -> None:
    source_path = tmp_path / "w.duckdb"
    shutil.copy(demo.path, source_path)
    folder = tmp_path / "replica"
    with DuckDBWarehouse(source_path) as source:
        first = open_replica(source, source_path, folder)
        made = first.stat().st_ino
        assert open_replica(source, source_path, folder) == first
        assert first.stat().st_ino == made  # reused, not made again
    later = source_path.stat().st_mtime_ns + 10**9
    os.utime(source_path, ns=(later, later))  # a reload of the warehouse
    with DuckDBWarehouse(source_path) as source:
        second = open_replica(source, source_path, folder)
    assert second != first
    assert sorted(folder.iterdir()) == [second]  # the old state's copy is gone


def test_a_source_with_nan_is_read_directly(demo: Demo, tmp_path: Path) -> None:
    source_path = var_with_warehouse(demo, tmp_path / "var")
    with duckdb.connect(str(source_path)) as con:
        con.execute(
            "UPDATE consumption_daily_f SET fbu = 'NaN'::DOUBLE WHERE usage_date = ?", [AS_OF]
        )
    folder = tmp_path / "replica"
    with DuckDBWarehouse(source_path) as source, pytest.raises(ReplicaUnavailable, match="fbu"):
        open_replica(source, source_path, folder)
    assert list(folder.iterdir()) == []  # no partial copy left behind

    settings = Settings(var_dir=tmp_path / "var")
    with structlog.testing.capture_logs() as logs:
        warehouse = open_service_warehouse(settings)
        assert isinstance(warehouse, ReplicatedWarehouse)
        try:
            assert not warehouse.wait_ready(120)
            assert warehouse.fetch_all(Q.ACCOUNT_BY_ID, {"account_id": "x"}) == []
        finally:
            warehouse.close()
    assert [(e["event"], "fbu" in e["reason"]) for e in logs] == [("warehouse_replica_off", True)]


def test_the_data_agent_reads_subjects_from_the_copy_unless_turned_off(
    demo: Demo, tmp_path: Path
) -> None:
    var_with_warehouse(demo, tmp_path / "var")
    warehouse = open_service_warehouse(Settings(var_dir=tmp_path / "var"))
    try:
        assert isinstance(warehouse, ReplicatedWarehouse)
        assert warehouse.wait_ready(120)
        assert warehouse.replica_path is not None
        assert warehouse.replica_path.parent == tmp_path / "var" / "state" / "warehouse-replica"
    finally:
        warehouse.close()
    off = open_service_warehouse(Settings(var_dir=tmp_path / "var", warehouse_replica=False))
    try:
        assert isinstance(off, DuckDBWarehouse)
    finally:
        off.close()


def test_a_state_folder_that_cannot_hold_the_copy_leaves_reads_on_duckdb(
    demo: Demo, tmp_path: Path
) -> None:
    var_with_warehouse(demo, tmp_path / "var")
    not_a_folder = tmp_path / "state"
    not_a_folder.write_text("a file where the state folder should be")
    settings = Settings(var_dir=tmp_path / "var", state_dir=not_a_folder)
    with structlog.testing.capture_logs() as logs:
        warehouse = open_service_warehouse(settings)
        assert isinstance(warehouse, ReplicatedWarehouse)
        try:
            assert not warehouse.wait_ready(120)
            account = next(iter(demo.truth["accounts"]))
            assert warehouse.fetch_all(Q.ACCOUNT_BY_ID, {"account_id": account})
        finally:
            warehouse.close()
    assert [e["event"] for e in logs] == ["warehouse_replica_off"]


def test_reads_go_to_duckdb_until_the_copy_is_ready(demo: Demo, tmp_path: Path) -> None:
    source = CountingSource(demo.path)
    release = threading.Event()

    def slow_copy(stopping: threading.Event) -> Path:
        assert release.wait(60)
        return open_replica(source, demo.path, tmp_path, stopping)

    warehouse = ReplicatedWarehouse(source, slow_copy)
    try:
        account = {"account_id": next(iter(demo.truth["accounts"]))}
        before = warehouse.fetch_all(Q.ACCOUNT_BY_ID, account)
        assert source.asked == ["account_by_id"] and not warehouse.wait_ready(0)
        release.set()
        assert warehouse.wait_ready(120)
        assert typed(warehouse.fetch_all(Q.ACCOUNT_BY_ID, account)) == typed(before)
        assert source.asked == ["account_by_id"]  # answered by the copy this time
    finally:
        warehouse.close()


def test_closing_stops_a_copy_being_made_and_leaves_nothing(demo: Demo, tmp_path: Path) -> None:
    with DuckDBWarehouse(demo.path) as source:
        stopped = threading.Event()
        stopped.set()
        with pytest.raises(ReplicaCancelled):
            open_replica(source, demo.path, tmp_path / "replica", stopped)
        assert list((tmp_path / "replica").iterdir()) == []

    started = threading.Event()

    def endless_copy(stopping: threading.Event) -> Path:
        started.set()
        assert stopping.wait(60)
        raise ReplicaCancelled("stopped")

    warehouse = ReplicatedWarehouse(DuckDBWarehouse(demo.path), endless_copy)
    assert started.wait(60)
    warehouse.close()  # returns once the copy has stopped
    assert not warehouse.wait_ready(0)


def test_a_copy_left_half_made_by_a_killed_process_is_removed(demo: Demo, tmp_path: Path) -> None:
    folder = tmp_path / "replica"
    folder.mkdir()
    # above Linux's largest pid (4,194,304): no process has it
    abandoned = folder / "0123456789abcdef.building-999999999"
    abandoned.write_bytes(b"half a copy")
    mine = folder / f"0123456789abcdef.building-{os.getpid()}"
    mine.write_bytes(b"being made by a live process")
    with DuckDBWarehouse(demo.path) as source:
        made = open_replica(source, demo.path, folder)
    assert sorted(folder.iterdir()) == sorted([made, mine])


def test_a_copy_that_cannot_be_opened_any_more_sends_reads_to_duckdb(
    demo: Demo, tmp_path: Path
) -> None:
    """E.g. a process started on a reloaded warehouse removed the copy of the older state
    before this one's reader thread opened it."""
    source = CountingSource(demo.path)
    warehouse = ReplicatedWarehouse(
        source, lambda stopping: open_replica(source, demo.path, tmp_path, stopping)
    )
    try:
        assert warehouse.wait_ready(120) and warehouse.replica_path is not None
        warehouse.replica_path.unlink()
        account = {"account_id": next(iter(demo.truth["accounts"]))}
        got: list[list[Row]] = []
        with structlog.testing.capture_logs() as logs:
            reader = threading.Thread(
                target=lambda: got.append(warehouse.fetch_all(Q.ACCOUNT_BY_ID, account))
            )
            reader.start()
            reader.join(60)
        assert got and got[0] and source.asked == ["account_by_id"]
        assert [e["event"] for e in logs] == ["warehouse_replica_off"]
        assert not warehouse.wait_ready(0)
    finally:
        warehouse.close()
