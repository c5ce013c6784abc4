"""The copy's packed usage answers what the usage query answers, account by account.

On the generated warehouse, and on a copy of it edited to hold what real exports hold (days
without a row at a window's edges, NULL measurements, two rows for one day, an infinite
value): for every account and several windows, the series read packed equals the series
`convert.to_usage_series` makes of DuckDB's rows, or the account is left to the rows (and then
refused or answered exactly as on DuckDB).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from contracts.series import DatasetFormatError, UsageSeries
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import convert
from services.data_agent.warehouse import queries as Q
from services.data_agent.warehouse.base import Warehouse
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
from services.data_agent.warehouse.packed_usage import PackingCancelled, pack_usage
from services.data_agent.warehouse.replica import ReplicatedWarehouse, open_replica

from .conftest import AS_OF, Demo
from .test_replica import CountingSource, var_with_warehouse

#: (after, as_of) pairs: the usual year up to the warehouse's day and earlier days, a short
#: window inside the data, one reaching past the last day and one before the first.
WINDOWS = [
    (AS_OF - timedelta(days=365), AS_OF),
    (AS_OF - timedelta(days=45 + 365), AS_OF - timedelta(days=45)),
    (AS_OF - timedelta(days=30), AS_OF - timedelta(days=10)),
    (AS_OF - timedelta(days=100), AS_OF + timedelta(days=100)),
    (AS_OF - timedelta(days=2000), AS_OF - timedelta(days=1000)),
]


def from_rows(source: Warehouse, account: str, after: date, as_of: date) -> Any:
    """What the usage query and `to_usage_series` give on DuckDB (or the error's text)."""
    columns = source.fetch_columns(
        Q.USAGE_BY_ACCOUNT, {"account_id": account, "after_date": after, "as_of": as_of}
    )
    try:
        return wire(convert.to_usage_series(columns, account))
    except DatasetFormatError as exc:
        return ("error", str(exc))


def wire(series: UsageSeries) -> dict[str, Any]:
    """The series as the dataset carries it (NaN: null), so NaN compares equal."""
    return series.to_columns()


def copy_of(source: DuckDBWarehouse, source_path: Path, folder: Path) -> ReplicatedWarehouse:
    warehouse = ReplicatedWarehouse(
        source, lambda stopping: open_replica(source, source_path, folder, stopping)
    )
    assert warehouse.wait_ready(120)
    return warehouse


@pytest.fixture(scope="module")
def edited(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A copy of the generated warehouse with gaps, NULLs, a doubled day and an infinity."""
    tmp = tmp_path_factory.mktemp("edited")
    path = var_with_warehouse(demo, tmp / "var")
    accounts = sorted(demo.truth["accounts"])
    gaps, nulls, doubled, infinite = accounts[:4]
    with duckdb.connect(str(path)) as con:
        # no row on the first and last days of the usual window, nor on a run inside it
        con.execute(
            "DELETE FROM consumption_daily_f WHERE sf_account_id = ? AND (usage_date IN (?, ?) "
            "OR usage_date BETWEEN ? AND ?)",
            [
                gaps,
                AS_OF,
                AS_OF - timedelta(days=364),
                AS_OF - timedelta(days=40),
                AS_OF - timedelta(days=20),
            ],
        )
        con.execute(
            "UPDATE consumption_daily_f SET fbu = NULL, cost_usd = NULL "
            "WHERE sf_account_id = ? AND usage_date > ?",
            [nulls, AS_OF - timedelta(days=60)],
        )
        # a second row for a day 100 days back: inside the usual window, outside a short one
        con.execute(
            "INSERT INTO consumption_daily_f SELECT * FROM consumption_daily_f "
            "WHERE sf_account_id = ? AND usage_date = ?",
            [doubled, AS_OF - timedelta(days=100)],
        )
        con.execute(
            "UPDATE consumption_daily_f SET engine_hours = 'Infinity'::DOUBLE "
            "WHERE sf_account_id = ? AND usage_date = ?",
            [infinite, AS_OF - timedelta(days=200)],
        )
    source = CountingSource(path)
    warehouse = copy_of(source, path, tmp / "replica")
    yield {
        "warehouse": warehouse,
        "accounts": accounts,
        "gaps": gaps,
        "nulls": nulls,
        "unpacked": [doubled, infinite],
    }
    warehouse.close()


@pytest.mark.parametrize("window", WINDOWS, ids=[f"{a}..{b}" for a, b in WINDOWS])
def test_packed_usage_is_what_the_usage_query_gives(
    edited: dict[str, Any], window: tuple[date, date]
) -> None:
    warehouse: ReplicatedWarehouse = edited["warehouse"]
    after, as_of = window
    asked = [*edited["accounts"], "001NOSUCHACCOUNT"]
    packed = warehouse.usage_series(asked, after, as_of)
    assert sorted(set(asked) - set(packed)) == sorted(edited["unpacked"])
    days = 0
    for account, series in packed.items():
        assert wire(series) == from_rows(warehouse.source, account, after, as_of), account
        days += series.days
    if window == WINDOWS[0]:  # not vacuous: a year of days for each account
        assert days > 300 * (len(edited["accounts"]) - 2)
        gaps = packed[edited["gaps"]]
        assert gaps.start == AS_OF - timedelta(days=363)  # trimmed to the first day with a row
        assert gaps.end == AS_OF - timedelta(days=1)
        assert 0.0 in packed[edited["nulls"]].values("fbu")


def test_accounts_kept_unpacked_are_read_and_refused_as_on_duckdb(
    edited: dict[str, Any],
) -> None:
    warehouse: ReplicatedWarehouse = edited["warehouse"]
    on_copy, on_duckdb = DatasetRepository(warehouse), DatasetRepository(warehouse.source)
    doubled, infinite = edited["unpacked"]
    for day in (AS_OF, AS_OF - timedelta(days=45)):
        for account in edited["unpacked"]:
            assert outcome(on_copy, account, day) == outcome(on_duckdb, account, day)
    # refused where the fault is inside the window, answered where it is not
    assert outcome(on_copy, doubled, AS_OF)[0] == "error"
    assert outcome(on_copy, infinite, AS_OF)[0] == "error"
    short = (AS_OF - timedelta(days=30), AS_OF)
    assert from_rows(warehouse.source, doubled, *short)["days"] == 30


def outcome(repository: DatasetRepository, account: str, day: date) -> tuple[str, Any]:
    try:
        dataset, _, _ = repository.account_dataset(account, day)
    except (DatasetFormatError, LookupError) as exc:
        return ("error", str(exc))
    return ("ok", dataset.model_dump(mode="json"))


def test_the_data_agent_reads_usage_packed_on_the_copy(demo: Demo, tmp_path: Path) -> None:
    """The usage query never reaches the copy for an account kept packed (one subject at a
    time and in a batch), and the datasets are those built on DuckDB."""
    source = DuckDBWarehouse(demo.path)
    warehouse = copy_of(source, demo.path, tmp_path)
    ran: list[str] = []
    try:
        accounts = sorted(demo.truth["accounts"])[:5]
        want = [outcome(DatasetRepository(source), a, AS_OF) for a in accounts]
        repository = DatasetRepository(warehouse)
        repository.account_dataset(accounts[0], AS_OF)  # opens this thread's connection
        warehouse._local.conn.set_trace_callback(ran.append)
        assert [outcome(repository, a, AS_OF) for a in accounts] == want
        batch = repository.reading_ahead(deals=[], accounts=accounts, as_of=AS_OF)
        assert [outcome(batch, a, AS_OF) for a in accounts] == want
    finally:
        warehouse.close()
    assert ran and any("usage_packed" in sql for sql in ran)
    assert not any("FROM consumption_daily_f" in sql for sql in ran)


def usage_copy() -> sqlite3.Connection:
    """A copy holding one account's one day of usage."""
    copy = sqlite3.connect(":memory:")
    copy.execute(
        "CREATE TABLE consumption_daily_f (sf_account_id TEXT, usage_date TEXT, query_count "
        "REAL, engine_hours REAL, fbu REAL, data_scanned_bytes REAL, data_ingested_bytes "
        "REAL, cost_usd REAL, active_users REAL)"
    )
    copy.execute("INSERT INTO consumption_daily_f VALUES ('a', '2025-01-01', 1, 1, 1, 1, 1, 1, 1)")
    return copy


def test_packing_stops_when_the_service_stops() -> None:
    stopped = threading.Event()
    stopped.set()
    with pytest.raises(PackingCancelled):
        pack_usage(usage_copy(), stopped)
    running = usage_copy()
    assert pack_usage(running, threading.Event()) == 1
    assert running.execute(
        "SELECT sf_account_id, first_day, days FROM usage_packed"
    ).fetchall() == [("a", date(2025, 1, 1).toordinal(), 1)]
