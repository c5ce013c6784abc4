"""The warehouse rows behind a dataset, read one subject at a time or a batch at once.

`DatasetRepository` (datasets.py) builds a deal's or an account's dataset from the rows
these classes return, and never queries the warehouse for a subject's rows itself:

* `PointReads`: one query per table and subject (the per-subject queries of queries.py);
* `BatchReads`: the rows of many subjects read ahead with one set-based query per table
  (`SetQuery`: `WHERE id IN (...)`, bound parameters, chunked under the engine's limit),
  split per subject in Python. A lookup outside what was read ahead falls back to the
  per-subject query, so what was read ahead decides the cost, never the result.

Both answer for one window (the day the datasets are built as of). Usage (a year of daily
rows per account, most of the rows read) is read as columns (`Warehouse.fetch_columns`) and
answered as a `UsageSeries`, the form the dataset carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, TypeGuard

from contracts.series import DatasetFormatError, UsageSeries
from services.common.stages import StageRules
from services.data_agent.warehouse import convert
from services.data_agent.warehouse import queries as Q
from services.data_agent.warehouse.base import Row, UsageSeriesSource, Warehouse
from services.data_agent.warehouse.rules import DataRules
from services.data_agent.won_times import StageRows, WonTimes

MAX_ID_LENGTH = 64


def is_valid_id(value: object) -> TypeGuard[str]:
    """An id the warehouse may hold: a non-empty string of at most MAX_ID_LENGTH."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


@dataclass(frozen=True)
class Window:
    """The day a dataset is built as of: nothing dated after it is read."""

    as_of: date

    @property
    def before_ts(self) -> datetime:
        """Exclusive upper bound for timestamps: the start of the day after as_of."""
        return datetime.combine(self.as_of + timedelta(days=1), time(0))


@dataclass(eq=False)
class PointReads:
    """One subject's rows, one query per table (the per-subject path). With `won_times`,
    the won-time statistics come from there (read for all won deals, kept a while)."""

    warehouse: Warehouse
    window: Window
    rules: DataRules
    stages: StageRules
    won_times: WonTimes | None = None
    #: Set-based queries run (chunks counted one by one), for logs and the bench.
    queries_run: int = field(default=0, init=False)

    @property
    def max_bound_ids(self) -> int:
        return self.warehouse.max_bound_ids

    def _rows(self, query: Q.Query, **params: Any) -> list[Row]:
        return self.warehouse.fetch_all(query, params)

    def _first(self, query: Q.Query, **params: Any) -> Row | None:
        rows = self._rows(query, **params)
        return rows[0] if rows else None

    @property
    def usage_after(self) -> date:
        """Usage rows are read for the days after this one, up to as_of."""
        return self.window.as_of - timedelta(days=self.rules.usage_window_days)

    # Dimension rows (None: no such row).
    def account(self, account_id: str) -> Row | None:
        return self._first(Q.ACCOUNT_BY_ID, account_id=account_id)

    def opportunity(self, opportunity_id: str) -> Row | None:
        return self._first(Q.OPPORTUNITY_BY_ID, opportunity_id=opportunity_id)

    def employee(self, user_id: str) -> Row | None:
        return self._first(Q.EMPLOYEE_BY_ID, user_id=user_id)

    def product(self, product_id: str) -> Row | None:
        return self._first(Q.PRODUCT_BY_ID, product_id=product_id)

    # A subject's fact rows, in the order of the per-subject query.
    def contacts(self, account_id: str) -> list[Row]:
        return self._rows(Q.CONTACTS_BY_ACCOUNT, account_id=account_id)

    def stage_history(self, opportunity_id: str) -> list[Row]:
        return self._rows(
            Q.STAGE_HISTORY_BY_OPPORTUNITY,
            opportunity_id=opportunity_id,
            before_ts=self.window.before_ts,
        )

    def opportunity_calls(self, opportunity_id: str) -> list[Row]:
        """The deal's customer calls (its calls as `DataRules.customer_calls` keeps them)."""
        rows = self._rows(
            Q.CALLS_BY_OPPORTUNITY,
            opportunity_id=opportunity_id,
            before_ts=self.window.before_ts,
        )
        return self.rules.customer_calls(rows)

    def account_calls(self, account_id: str) -> list[Row]:
        """The account's customer calls."""
        rows = self._rows(
            Q.CALLS_BY_ACCOUNT, account_id=account_id, before_ts=self.window.before_ts
        )
        return self.rules.customer_calls(rows)

    def usage(self, account_id: str) -> UsageSeries:
        """The account's daily usage in the window, read as columns (a year of rows), or
        packed where the warehouse keeps it so."""
        packed = self._packed_usage([account_id]).get(account_id)
        if packed is not None:
            return packed
        params = {"account_id": account_id, "after_date": self.usage_after}
        columns = self.warehouse.fetch_columns(
            Q.USAGE_BY_ACCOUNT, {**params, "as_of": self.window.as_of}
        )
        return convert.to_usage_series(columns, account_id)

    def _packed_usage(self, account_ids: Sequence[str]) -> dict[str, UsageSeries]:
        """What a warehouse that keeps usage packed answers at once; {} from any other."""
        if not isinstance(self.warehouse, UsageSeriesSource):
            return {}
        return self.warehouse.usage_series(account_ids, self.usage_after, self.window.as_of)

    def tickets(self, account_id: str) -> list[Row]:
        return self._rows(
            Q.TICKETS_BY_ACCOUNT, account_id=account_id, before_ts=self.window.before_ts
        )

    def agreements(self, account_id: str) -> list[Row]:
        return self._rows(Q.AGREEMENTS_BY_ACCOUNT, account_id=account_id, as_of=self.window.as_of)

    def billing(self, account_id: str) -> list[Row]:
        return self._rows(Q.BILLING_BY_ACCOUNT, account_id=account_id, as_of=self.window.as_of)

    def won_time(self, stage: str, segment: dict[str, Any]) -> Row:
        """How long deals won before as_of spent in `stage`: `won_deals`, `median_days`
        over all of them, `segment_won_deals`, `segment_median_days` over those with the
        same `segment` values (the stage model's `stale_in_stage.segment_by` columns)."""
        if self.won_times is not None:
            rows = self.won_times.rows(self.window.as_of, [stage], self._won_time_rows)
            return won_time_answer(*rows[stage], segment)
        return self._rows(
            Q.won_time_in_stage(self.stages),
            stage=stage,
            as_of=self.window.as_of,
            before_ts=self.window.before_ts,
            **{f"seg_{c}": v for c, v in segment.items()},
        )[0]

    def _won_time_rows(self, stages: Sequence[str]) -> dict[str, StageRows]:
        """The won-time rows of `stages` (all won deals, and per segment), set-based."""
        by_stage, by_segment = Q.won_time_by_stage(self.stages)
        window = {"as_of": self.window.as_of, "before_ts": self.window.before_ts}
        every = self._split(by_stage, stages, **window)
        per_segment = self._split(by_segment, stages, **window)
        return {stage: (every[stage], per_segment[stage]) for stage in stages}

    def _split(self, query: Q.SetQuery, ids: Sequence[str], **params: Any) -> dict[str, list[Row]]:
        """Run `query` for `ids` in chunks; its rows split per id (every id present)."""
        split: dict[str, list[Row]] = {i: [] for i in ids}
        for start in range(0, len(ids), self.max_bound_ids):
            sql, bound = query.for_ids(ids[start : start + self.max_bound_ids])
            self.queries_run += 1
            for row in self.warehouse.fetch_all(sql, {**params, **bound}):
                split[str(row[query.key])].append(row)
        return split


@dataclass(eq=False)
class BatchReads(PointReads):
    """The rows of many subjects, read ahead with one set-based query per table.

    `read_ahead(deals=..., accounts=...)` runs the queries; every lookup then answers from
    what they returned, split per subject (an id read ahead without rows: None or []), and
    falls back to the per-subject query for an id that was not read ahead.
    """

    # query name -> subject id -> its rows, for every id the query was run for
    _ahead: dict[str, dict[str, list[Row]]] = field(default_factory=dict, init=False)
    # read as columns, by account id (or why that account's usage cannot be a series)
    _usage: dict[str, UsageSeries | DatasetFormatError] = field(default_factory=dict, init=False)

    # -- reading ahead ----------------------------------------------------------------
    def read_ahead(
        self,
        deals: Iterable[tuple[str | None, str]] = (),
        accounts: Iterable[str] = (),
    ) -> None:
        """Read the rows of deal subjects (account id or None, opportunity id) and account
        subjects: first the deals, then what they name (accounts, owners, products, the
        stages they are in), one query per table at each step."""
        deals = list(deals)
        account_ids = _valid(accounts)
        opportunity_ids = _valid({o for _, o in deals})
        opportunities = [
            r[0] for r in self._read(Q.OPPORTUNITIES_BY_IDS, opportunity_ids).values() if r
        ]
        deal_accounts = _valid([a for a, _ in deals] + [o["sf_account_id"] for o in opportunities])
        every_account = sorted(set(deal_accounts) | set(account_ids))
        found = [str(o["opportunity_id"]) for o in opportunities]
        before_ts = {"before_ts": self.window.before_ts}
        accounts_rows = [r[0] for r in self._read(Q.ACCOUNTS_BY_IDS, every_account).values() if r]
        history = self._read(Q.STAGE_HISTORY_BY_OPPORTUNITIES, found, **before_ts)
        self._read_calls(Q.CALLS_BY_OPPORTUNITIES, found)
        self._read(Q.CONTACTS_BY_ACCOUNTS, every_account)
        self._read_usage(every_account)
        self._read(Q.PRODUCTS_BY_IDS, _valid({o.get("product_id") for o in opportunities}))
        owners = {o.get("owner_id") for o in opportunities}
        owners |= {a.get("sf_owner_id") for a in accounts_rows}
        self._read(Q.EMPLOYEES_BY_IDS, _valid(owners))
        if account_ids:
            self._read_calls(Q.CALLS_BY_ACCOUNTS, account_ids)
            self._read(Q.TICKETS_BY_ACCOUNTS, account_ids, **before_ts)
            self._read(Q.AGREEMENTS_BY_ACCOUNTS, account_ids, as_of=self.window.as_of)
            self._read(Q.BILLING_BY_ACCOUNTS, account_ids, as_of=self.window.as_of)
        # A deal's stage is its record's, or on another day its history's: read both.
        stages = {o.get("stage_name") for o in opportunities}
        stages |= {rows[-1]["to_stage"] for rows in history.values() if rows}
        self._read_won_time(sorted(s for s in stages if isinstance(s, str)))

    def _read(self, query: Q.SetQuery, ids: Sequence[str], **params: Any) -> dict[str, list[Row]]:
        """Run `query` for `ids` in chunks and keep its rows for the lookups."""
        return self._keep(query.name, self._split(query, ids, **params))

    def _keep(self, name: str, rows: dict[str, list[Row]]) -> dict[str, list[Row]]:
        """Rows per subject that the lookups of query `name` answer from."""
        self._ahead.setdefault(name, {}).update(rows)
        return rows

    def _read_calls(self, query: Q.SetQuery, ids: Sequence[str]) -> None:
        """The subjects' calls, of which their lookups answer the customer calls."""
        calls = self._split(query, ids, before_ts=self.window.before_ts)
        self._keep(query.name, {s: self.rules.customer_calls(rows) for s, rows in calls.items()})

    def _read_usage(self, account_ids: Sequence[str]) -> None:
        """The usage of `account_ids`: packed where the warehouse keeps it so, the others
        read as columns in chunks and split per account by position (the set query orders
        by account, then day)."""
        query = Q.USAGE_BY_ACCOUNTS
        window = {"after_date": self.usage_after, "as_of": self.window.as_of}
        for start in range(0, len(account_ids), self.max_bound_ids):
            chunk = account_ids[start : start + self.max_bound_ids]
            packed = self._packed_usage(chunk)
            self._usage.update(packed)
            chunk = [a for a in chunk if a not in packed]
            if not chunk:
                continue
            sql, bound = query.for_ids(chunk)
            self.queries_run += 1
            columns = self.warehouse.fetch_columns(sql, {**window, **bound})
            self._usage.update(dict.fromkeys(chunk, UsageSeries.empty()))
            owners = columns.get(query.key)
            if owners is None or not len(owners):
                continue
            # Each account's rows are contiguous (ordered by account): where each one starts,
            # found by the sequence's own search (C), not a Python step per row.
            starts: list[int] = []
            for owner in dict.fromkeys(owners):
                starts.append(owners.index(owner, starts[-1] if starts else 0))
            for lo, hi in pairwise([*starts, len(owners)]):
                account = str(owners[lo])
                piece = {name: values[lo:hi] for name, values in columns.items()}
                try:
                    self._usage[account] = convert.to_usage_series(piece, account)
                except DatasetFormatError as exc:  # that account's dataset fails, not the batch
                    self._usage[account] = exc

    def _read_won_time(self, stages: Sequence[str]) -> None:
        if not stages:
            return
        if self.won_times is None:
            rows = self._won_time_rows(stages)
        else:
            rows = self.won_times.rows(self.window.as_of, stages, self._won_time_rows)
        by_stage, by_segment = Q.won_time_by_stage(self.stages)
        self._keep(by_stage.name, {s: every for s, (every, _) in rows.items()})
        self._keep(by_segment.name, {s: per_segment for s, (_, per_segment) in rows.items()})

    # -- lookups ----------------------------------------------------------------------
    def _many(
        self, query: Q.SetQuery, subject: str, point: Callable[[str], list[Row]]
    ) -> list[Row]:
        rows = self._ahead.get(query.name, {}).get(subject)
        return point(subject) if rows is None else rows

    def _one(
        self, query: Q.SetQuery, subject: str, point: Callable[[str], Row | None]
    ) -> Row | None:
        rows = self._ahead.get(query.name, {}).get(subject)
        if rows is None:
            return point(subject)
        return rows[0] if rows else None

    def account(self, account_id: str) -> Row | None:
        return self._one(Q.ACCOUNTS_BY_IDS, account_id, super().account)

    def opportunity(self, opportunity_id: str) -> Row | None:
        return self._one(Q.OPPORTUNITIES_BY_IDS, opportunity_id, super().opportunity)

    def employee(self, user_id: str) -> Row | None:
        return self._one(Q.EMPLOYEES_BY_IDS, user_id, super().employee)

    def product(self, product_id: str) -> Row | None:
        return self._one(Q.PRODUCTS_BY_IDS, product_id, super().product)

    def contacts(self, account_id: str) -> list[Row]:
        return self._many(Q.CONTACTS_BY_ACCOUNTS, account_id, super().contacts)

    def stage_history(self, opportunity_id: str) -> list[Row]:
        return self._many(Q.STAGE_HISTORY_BY_OPPORTUNITIES, opportunity_id, super().stage_history)

    def opportunity_calls(self, opportunity_id: str) -> list[Row]:
        return self._many(Q.CALLS_BY_OPPORTUNITIES, opportunity_id, super().opportunity_calls)

    def account_calls(self, account_id: str) -> list[Row]:
        return self._many(Q.CALLS_BY_ACCOUNTS, account_id, super().account_calls)

    def usage(self, account_id: str) -> UsageSeries:
        series = self._usage.get(account_id)
        if isinstance(series, DatasetFormatError):
            raise DatasetFormatError(str(series), series.code)
        return super().usage(account_id) if series is None else series

    def tickets(self, account_id: str) -> list[Row]:
        return self._many(Q.TICKETS_BY_ACCOUNTS, account_id, super().tickets)

    def agreements(self, account_id: str) -> list[Row]:
        return self._many(Q.AGREEMENTS_BY_ACCOUNTS, account_id, super().agreements)

    def billing(self, account_id: str) -> list[Row]:
        return [
            {k: v for k, v in row.items() if k != "sf_account_id"}  # as the per-subject query
            for row in self._many(Q.BILLING_BY_ACCOUNTS, account_id, super().billing)
        ]

    def won_time(self, stage: str, segment: dict[str, Any]) -> Row:
        by_stage, by_segment = Q.won_time_by_stage(self.stages)
        all_rows = self._ahead.get(by_stage.name, {}).get(stage)
        segment_rows = self._ahead.get(by_segment.name, {}).get(stage)
        if all_rows is None or segment_rows is None:
            return super().won_time(stage, segment)
        return won_time_answer(all_rows, segment_rows, segment)


def won_time_answer(all_rows: list[Row], segment_rows: list[Row], segment: dict[str, Any]) -> Row:
    """The per-subject query's answer (`PointReads.won_time`) from a stage's set-based rows:
    over all won deals, and over the deal's `segment`."""
    # NULL matches NULL, as `IS NOT DISTINCT FROM` in the per-subject query.
    same = [r for r in segment_rows if all(r[f"seg_{c}"] == v for c, v in segment.items())]
    return {
        "won_deals": all_rows[0]["won_deals"] if all_rows else 0,
        "median_days": all_rows[0]["median_days"] if all_rows else None,
        "segment_won_deals": same[0]["won_deals"] if same else 0,
        "segment_median_days": same[0]["median_days"] if same else None,
    }


def _valid(ids: Iterable[object]) -> list[str]:
    """The valid ids among `ids`, sorted (a set query's ids; nothing else is bound)."""
    return sorted({i for i in ids if is_valid_id(i)})
