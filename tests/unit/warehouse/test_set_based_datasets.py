"""Set-based datasets equal the per-subject ones, field for field, on the generated warehouse.

For every account and every opportunity (open and closed, with its account; on the
warehouse's day also without one given), on the warehouse's day and on two earlier days
(deals scored as they stood, some not created yet), the datasets built from one batch read
(`DatasetRepository.reading_ahead`) are those built one subject at a time, and so are the
errors; the batch runs one query per table, and a chunked batch (a few ids per query)
returns the same.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from services.data_agent.datasets import DatasetRepository, DatasetResult, UnknownSubjectError
from services.data_agent.warehouse.base import Columns, Params, Row
from services.data_agent.warehouse.duckdb_adapter import DuckDBWarehouse
from services.data_agent.warehouse.queries import SET_QUERIES, Query

from .conftest import AS_OF, Demo

DAYS = [AS_OF, AS_OF - timedelta(days=45), AS_OF - timedelta(days=210)]


class CountingWarehouse(DuckDBWarehouse):
    def __init__(self, path: Path, max_bound_ids: int = 1000) -> None:
        super().__init__(path)
        self.max_bound_ids = max_bound_ids
        self.queries: Counter[str] = Counter()

    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        self.queries[query.name] += 1
        return super().fetch_all(query, params)

    def fetch_columns(self, query: Query, params: Params | None = None) -> Columns:
        self.queries[query.name] += 1
        return super().fetch_columns(query, params)


@pytest.fixture(scope="module")
def warehouse(demo: Demo) -> Iterator[CountingWarehouse]:
    wh = CountingWarehouse(demo.path)
    yield wh
    wh.close()


Outcome = tuple[Any, ...]


def outcome(build: Any) -> Outcome:
    """A dataset result as plain data (every field), or the error with its reason."""
    try:
        result: DatasetResult = build()
    except UnknownSubjectError as exc:
        return ("error", str(exc), exc.reason)
    dataset, collection, findings = result
    return (
        dataset.model_dump(mode="json"),
        collection.model_dump(mode="json"),
        [f.model_dump(mode="json") for f in findings],
    )


def subjects(
    demo: Demo, unnamed_accounts: bool = False
) -> tuple[list[tuple[str | None, str]], list[str]]:
    """Every opportunity with its account (and with none given: `unnamed_accounts`), a few
    that cannot be analysed, and every account and one that does not exist."""
    opportunities = sorted(demo.truth["opportunities"].items())
    deals: list[tuple[str | None, str]] = [(t["sf_account_id"], o) for o, t in opportunities]
    if unnamed_accounts:
        deals += [(None, o) for o, _ in opportunities]
    first, second = (
        opportunities[0],
        next(
            o
            for o in opportunities
            if o[1]["sf_account_id"] != opportunities[0][1]["sf_account_id"]
        ),
    )
    deals += [
        (second[1]["sf_account_id"], first[0]),  # another account's deal
        (first[1]["sf_account_id"], "006NOSUCHDEAL"),
        ("001NOSUCHACCOUNT", first[0]),
        ("x" * 65, first[0]),
    ]
    return deals, [*sorted(demo.truth["accounts"]), "001NOSUCHACCOUNT"]


def per_subject(
    repository: DatasetRepository,
    deals: list[tuple[str | None, str]],
    accounts: list[str],
    day: date,
) -> list[Outcome]:
    return [outcome(partial(repository.deal_dataset, a, o, day)) for a, o in deals] + [
        outcome(partial(repository.account_dataset, a, day)) for a in accounts
    ]


@pytest.mark.parametrize("day", DAYS, ids=[d.isoformat() for d in DAYS])
def test_set_based_datasets_equal_the_per_subject_ones(
    demo: Demo, warehouse: CountingWarehouse, day: date
) -> None:
    repository = DatasetRepository(warehouse)
    deals, accounts = subjects(demo, unnamed_accounts=day == AS_OF)
    expected = per_subject(repository, deals, accounts, day)

    warehouse.queries.clear()
    batch = repository.reading_ahead(deals=deals, accounts=accounts, as_of=day)
    got = per_subject(batch, deals, accounts, day)
    ran = dict(warehouse.queries)
    ran.pop("history_coverage", None)  # read once by the repository, for any past day

    assert len(got) == len(expected) == len(deals) + len(accounts)
    for subject, want, have in zip([*deals, *accounts], expected, got, strict=True):
        assert have == want, subject
    # Not vacuous: most subjects have datasets, and the errors are the per-subject ones.
    built = [o for o in got if o[0] != "error"]
    assert len(built) > len(got) // 3
    reasons = Counter(o[2] for o in got if o[0] == "error")
    assert reasons["unknown"] >= 4
    if day < AS_OF - timedelta(days=100):
        assert reasons["created_after"] > 0
    # One set-based query per table, nothing per subject (the demo has no product catalog).
    expected_queries = {name: 1 for name in SET_QUERIES if name != "products_by_ids"}
    expected_queries |= {"won_time_by_stage": 1, "won_time_by_segment": 1}
    assert ran == expected_queries
    assert batch.queries_read_ahead == sum(ran.values())


def test_a_chunked_batch_returns_the_same_datasets(
    demo: Demo, warehouse: CountingWarehouse
) -> None:
    """Ids bound a few per query (an engine's parameter limit): the same datasets as one
    query per table (which are the per-subject ones, above)."""
    deals, accounts = subjects(demo)
    day = DAYS[1]
    whole = DatasetRepository(warehouse).reading_ahead(deals=deals, accounts=accounts, as_of=day)
    with CountingWarehouse(demo.path, max_bound_ids=7) as chunked:
        batch = DatasetRepository(chunked).reading_ahead(deals=deals, accounts=accounts, as_of=day)
        assert per_subject(batch, deals, accounts, day) == per_subject(whole, deals, accounts, day)
        ran = dict(chunked.queries)
    every_account = len(demo.truth["accounts"]) + 1  # and the one that does not exist
    assert ran["accounts_by_ids"] == -(-every_account // 7)
    assert ran["usage_by_accounts"] == -(-every_account // 7)
    assert ran["opportunities_by_ids"] == -(-(len(demo.truth["opportunities"]) + 1) // 7)
    assert "account_by_id" not in ran and "usage_by_account" not in ran


def test_products_come_from_the_batch_read_too(demo: Demo, tmp_path: Path) -> None:
    """The demo has no product catalog: a copy with one (and a deal whose product is not in
    it) gives the same datasets, with one product query for the batch."""
    path = tmp_path / "with_products.duckdb"
    shutil.copy(demo.path, path)
    with DuckDBWarehouse(path, read_only=False) as wh:
        con = wh.connection
        con.execute(
            "INSERT INTO product_d (product_id, product_name, product_family, list_price) "
            "VALUES ('P-1', 'Core', 'Platform', 1000.0), ('P-2', 'Edge', NULL, NULL)"
        )
        con.execute(
            "UPDATE opportunity_d SET product_id = CASE WHEN hash(opportunity_id) % 3 = 0 "
            "THEN 'P-1' WHEN hash(opportunity_id) % 3 = 1 THEN 'P-2' ELSE 'P-GONE' END"
        )
    deals = subjects(demo)[0][:40]
    with CountingWarehouse(path) as wh:
        repository = DatasetRepository(wh)
        expected = per_subject(repository, deals, [], AS_OF)
        wh.queries.clear()
        batch = repository.reading_ahead(deals=deals)
        assert per_subject(batch, deals, [], AS_OF) == expected
        assert wh.queries["products_by_ids"] == 1 and wh.queries["product_by_id"] == 0
    products = {o[0]["opportunity"]["product_id"]: o[0]["product"] for o in expected}
    assert set(products) == {"P-1", "P-2", "P-GONE"}
    assert products["P-1"] == {
        "product_id": "P-1",
        "product_name": "Core",
        "product_family": "Platform",
        "list_price": 1000.0,
    }
    assert products["P-GONE"] is None


def test_subjects_not_read_ahead_fall_back_to_per_subject_reads(
    demo: Demo, warehouse: CountingWarehouse
) -> None:
    """What a batch read ahead decides its cost, never its result."""
    repository = DatasetRepository(warehouse)
    [first, second] = sorted(demo.truth["accounts"])[:2]
    batch = repository.reading_ahead(accounts=[first])
    warehouse.queries.clear()
    assert outcome(lambda: batch.account_dataset(second)) == outcome(
        lambda: repository.account_dataset(second)
    )
    assert warehouse.queries["account_by_id"] == 2  # the batch's fallback, then the direct
    warehouse.queries.clear()
    assert outcome(lambda: batch.account_dataset(first, AS_OF - timedelta(days=30))) == outcome(
        lambda: repository.account_dataset(first, AS_OF - timedelta(days=30))
    )
    assert warehouse.queries["account_by_id"] == 2  # another day: not what was read ahead
