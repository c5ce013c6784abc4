"""`fleet_columns_from_warehouse`: every account's consumption inputs in a few set-based reads.

One chunked, (account, day)-ordered read of `consumption_daily_f` over the analysis window
(arrow record batches straight from DuckDB; other engines through `fetch_chunks`), written
into preallocated numpy arrays, plus one small query per side table. No per-account query.

The facts are those `DatasetRepository.account_dataset` gives one account (same account set,
same customer-call filter, same "as it stood" rule for agreements), so `analyze_fleet` on
them equals `ConsumptionAnalyzer` on each account's dataset (tested on a seeded warehouse).
One intended difference: the account dataset carries no opportunity, while the fleet reads
whether an open opportunity existed on `as_of` (the prospects' `no_opportunity` signal).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from bench.consumption_fleet.fleet import FleetColumns, analyze_fleet
from bench.consumption_fleet.queries import (
    FLEET_ACCOUNTS,
    FLEET_AGREEMENTS,
    FLEET_CUSTOMER_CALLS,
    FLEET_TICKETS,
    FLEET_USAGE,
)
from services.data_agent.warehouse import queries as warehouse_queries
from services.data_agent.warehouse.base import Warehouse, WarehouseError
from services.data_agent.warehouse.convert import customer_class
from services.data_agent.warehouse.meta import meta_as_of, read_meta
from services.data_agent.warehouse.queries import Query
from services.data_agent.warehouse.rules import load_rules
from services.decision_agent.consumption.inputs import USAGE_DTYPE, USAGE_METRICS
from services.decision_agent.consumption.pipeline import FleetAssessment
from services.decision_agent.consumption.rule_models import ConsumptionRules

BATCH_ROWS = 1_000_000


def record_batches(
    warehouse: Warehouse, query: Query, params: Mapping[str, Any], batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Query results as arrow batches: DuckDB's native arrow export when available."""
    connection = getattr(warehouse, "connection", None)
    if isinstance(connection, duckdb.DuckDBPyConnection):
        sql, values = query.bind(params)
        try:
            cursor = connection.cursor()  # its own client context: settings stay local
            cursor.execute("SET enable_progress_bar = false")
            relation = cursor.sql(sql, params=list(values))
            if relation is None:
                raise WarehouseError(f"query {query.name} returned no result")
            yield from relation.to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise WarehouseError(f"query {query.name} failed: {exc}") from exc
        return
    for rows in warehouse.fetch_chunks(query, params, batch_rows):
        yield pa.RecordBatch.from_pylist(rows)


def _table(warehouse: Warehouse, query: Query, params: Mapping[str, Any]) -> pa.Table:
    batches = list(record_batches(warehouse, query, params))
    return pa.Table.from_batches(batches) if batches else pa.table({})


def _col(table: pa.Table, name: str) -> NDArray[Any]:
    if table.num_rows == 0:
        return np.zeros(0)
    return table.column(name).to_numpy(zero_copy_only=False)


def _numbers(column: pa.Array) -> NDArray[Any]:
    """A numeric column as numpy without a copy when it has no NULL (NULL -> NaN), and
    without pyarrow's pandas-compatible path (which imports pandas)."""
    if column.null_count:
        column = pc.fill_null(pc.cast(column, pa.float64()), float("nan"))
    return column.to_numpy(zero_copy_only=True)


def _days(column: pa.Array) -> NDArray[np.int32]:
    """A non-null date32 column as int32 days since 1970-01-01 (no copy)."""
    return np.asarray(_numbers(pc.cast(column, pa.int32())), np.int32)


class _UsageRows:
    """Preallocated row arrays (the window holds at most accounts x days rows). Values are
    kept metric by metric (contiguous writes); `values` is their rows x metrics view."""

    def __init__(self, capacity: int) -> None:
        self.size = 0
        self.account = np.empty(capacity, dtype=np.int32)
        self.day = np.empty(capacity, dtype=np.int32)
        self.by_metric = np.empty((len(USAGE_METRICS), capacity), dtype=USAGE_DTYPE)

    def _grow(self, needed: int) -> None:
        """More rows than (account, day) pairs: the table has duplicate days."""
        size = max(needed, 2 * len(self.day))
        self.account = np.resize(self.account, size)
        self.day = np.resize(self.day, size)
        grown = np.empty((len(USAGE_METRICS), size), dtype=USAGE_DTYPE)
        grown[:, : self.size] = self.by_metric[:, : self.size]
        self.by_metric = grown

    def append(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        if self.size + n > len(self.day):
            self._grow(self.size + n)
        rows = slice(self.size, self.size + n)
        self.account[rows] = _numbers(batch.column(0))
        self.day[rows] = _days(batch.column(1))
        for m in range(len(USAGE_METRICS)):  # NULL -> NaN (the analysis reads it as 0)
            self.by_metric[m, rows] = _numbers(batch.column(2 + m))
        self.size += n

    @property
    def values(self) -> NDArray[np.float32]:
        return self.by_metric[:, : self.size].T


def _configured_rules() -> ConsumptionRules:
    from services.common.settings import get_settings
    from services.decision_agent.consumption.analyzer import load_consumption_rules

    return load_consumption_rules(get_settings().rules_dir)


def analyze_fleet_from_warehouse(
    warehouse: Warehouse, as_of: date | None = None, rules: ConsumptionRules | None = None
) -> FleetAssessment:
    """The daily fleet scan: every account of the warehouse analyzed as of `as_of`."""
    rules = rules or _configured_rules()
    as_of = as_of or meta_as_of(read_meta(warehouse))
    return analyze_fleet(fleet_columns_from_warehouse(warehouse, as_of, rules), as_of, rules)


def fleet_columns_from_warehouse(
    warehouse: Warehouse, as_of: date | None = None, rules: ConsumptionRules | None = None
) -> FleetColumns:
    """Every account's inputs of the consumption analysis as of `as_of` (default: the
    warehouse's as_of); `rules` (default: the configured consumption.yaml) set the window."""
    rules = rules or _configured_rules()
    meta_day = meta_as_of(read_meta(warehouse))
    as_of = as_of or meta_day
    before_ts = datetime.combine(as_of + timedelta(days=1), time(0))
    params: dict[str, Any] = {
        "as_of": as_of,
        "before_ts": before_ts,
        "usage_after": as_of - timedelta(days=load_rules().usage_window_days),
        "window_after": as_of - timedelta(days=rules.history_days),
        "side_from_ts": before_ts - timedelta(days=rules.history_days),
        **warehouse_queries.customer_call_params(),
    }

    def bound(query: Query) -> dict[str, Any]:
        return {k: params[k] for k in query.param_names}

    accounts = _table(warehouse, FLEET_ACCOUNTS, bound(FLEET_ACCOUNTS))
    n = accounts.num_rows
    usage = _UsageRows(n * rules.history_days)
    for batch in record_batches(warehouse, FLEET_USAGE, bound(FLEET_USAGE)):
        usage.append(batch)
    tickets = _table(warehouse, FLEET_TICKETS, bound(FLEET_TICKETS))
    agreements = _table(warehouse, FLEET_AGREEMENTS, bound(FLEET_AGREEMENTS))
    calls = _table(warehouse, FLEET_CUSTOMER_CALLS, bound(FLEET_CUSTOMER_CALLS))

    types = _col(accounts, "sf_account_type_custom")
    classes = {t: customer_class(t).value for t in set(types.tolist())}
    created = _col(accounts, "created_at_ts")
    agreement_active = np.array(
        [True if v is None else bool(v) for v in _col(agreements, "is_active").tolist()],
        dtype=np.bool_,
    )
    start, end = _col(agreements, "start_date"), _col(agreements, "end_date")
    if as_of < meta_day:  # as it stood: active means covering as_of (like account_dataset)
        day = np.datetime64(as_of)
        agreement_active = (start <= day) & (day <= end) if len(start) else agreement_active
    rows = slice(0, usage.size)
    return FleetColumns(
        account_ids=_col(accounts, "sf_account_id").astype(str),
        customer_class=[classes[t] for t in types.tolist()],
        created_at=np.asarray(created, dtype="datetime64[D]"),
        has_opportunity=_col(accounts, "has_opportunity").astype(np.bool_),
        usage_account=usage.account[rows],
        usage_date=usage.day[rows],
        usage_values=usage.values,
        first_usage=np.asarray(_col(accounts, "first_usage_date"), dtype="datetime64[D]"),
        ticket_account=_col(tickets, "sf_account_id").astype(str),
        ticket_id=_col(tickets, "ticket_id").astype(str),
        ticket_created=np.asarray(_col(tickets, "created_at_ts"), dtype="datetime64[D]"),
        ticket_priority=_col(tickets, "priority").astype(str),
        agreement_account=_col(agreements, "sf_account_id").astype(str),
        agreement_id=_col(agreements, "agreement_id").astype(str),
        agreement_start=np.asarray(start, dtype="datetime64[D]"),
        agreement_end=np.asarray(end, dtype="datetime64[D]"),
        agreement_amount=_col(agreements, "amount").astype(np.float64),
        agreement_term_months=_col(agreements, "term_months").astype(np.int64),
        agreement_active=agreement_active,
        call_account=_col(calls, "sf_account_id").astype(str),
        call_id=_col(calls, "call_id").astype(str),
        call_start=np.asarray(_col(calls, "start_ts"), dtype="datetime64[D]"),
    )
