"""FireboltWarehouse at the HTTP layer: the real firebolt-sdk talks to a fake Firebolt
(tests/support/fake_firebolt.py) that runs the received SQL with the received server-side
parameters on the generated DuckDB warehouse, so the tests check the SQL and parameters sent
and the rows parsed back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import duckdb
import pytest

from services.data_agent.datasets import DatasetRepository
from services.data_agent.fleet import fleet_screen
from services.data_agent.warehouse.base import WarehouseError
from services.data_agent.warehouse.firebolt_adapter import FireboltWarehouse
from services.data_agent.warehouse.queries import ACCOUNT_BY_ID, FLEET_SCREEN, USAGE_BY_ACCOUNT
from tests.support.fake_firebolt import FIREBOLT_ENV, FakeFirebolt

from .conftest import AS_OF, Demo


@pytest.fixture
def fake(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> FakeFirebolt:
    server = FakeFirebolt(duckdb.connect(str(demo.path), read_only=True))
    server.install(monkeypatch)
    return server


@pytest.fixture
def firebolt(fake: FakeFirebolt) -> Iterator[FireboltWarehouse]:
    wh = FireboltWarehouse.from_env(FIREBOLT_ENV)
    yield wh
    wh.close()


def test_point_query_sends_sql_and_bound_parameters(
    demo: Demo, fake: FakeFirebolt, firebolt: FireboltWarehouse
) -> None:
    aid = next(iter(demo.truth["accounts"]))
    rows = firebolt.fetch_all(ACCOUNT_BY_ID, {"account_id": aid})
    assert rows == demo.warehouse.fetch_all(ACCOUNT_BY_ID, {"account_id": aid})
    sql, values, fmt = fake.queries[-1]
    assert sql.endswith("WHERE sf_account_id = $1") and values == [aid]
    assert aid not in sql and fmt == "JSON_Compact"
    paths = [r.url.path for r in fake.requests[:2]]
    assert paths == ["/oauth/token", "/web/v3/account/acme/engineUrl"]
    assert fake.requests[0].url.host == "id.fake-firebolt.test"


def test_injection_string_travels_as_a_parameter(
    fake: FakeFirebolt, firebolt: FireboltWarehouse
) -> None:
    evil = "x' OR '1'='1"
    assert firebolt.fetch_all(ACCOUNT_BY_ID, {"account_id": evil}) == []
    sql, values, _ = fake.queries[-1]
    assert evil not in sql and values == [evil]


def test_chunked_stream_parses_typed_rows(
    demo: Demo, fake: FakeFirebolt, firebolt: FireboltWarehouse
) -> None:
    aid = next(iter(demo.truth["accounts"]))
    params = {"account_id": aid, "after_date": date(2025, 6, 20), "as_of": AS_OF}
    chunks = list(firebolt.fetch_chunks(USAGE_BY_ACCOUNT, params, chunk_rows=4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    rows = [r for c in chunks for r in c]
    assert rows == demo.warehouse.fetch_all(USAGE_BY_ACCOUNT, params)
    assert isinstance(rows[0]["usage_date"], date) and isinstance(rows[0]["cost_usd"], float)
    sql, values, fmt = fake.queries[-1]
    assert fmt == "JSONLines_Compact"
    assert "CAST($2 AS DATE)" in sql and values == [aid, "2025-06-20", "2025-06-30"]


def test_fleet_screen_runs_through_firebolt(
    demo: Demo, fake: FakeFirebolt, firebolt: FireboltWarehouse
) -> None:
    via_firebolt = fleet_screen(firebolt, as_of=AS_OF)
    assert via_firebolt == fleet_screen(demo.warehouse, as_of=AS_OF)
    sql, values, _ = fake.queries[-1]
    assert sql.lstrip().startswith("WITH p AS") and "2025-06-30" not in sql
    assert "2025-06-30" in values and 0.7 in values
    assert FLEET_SCREEN.name == "fleet_screen"


def test_missing_configuration_is_a_clear_error() -> None:
    with pytest.raises(WarehouseError, match="REVOPS_FIREBOLT_ENGINE"):
        FireboltWarehouse.from_env(
            {
                "REVOPS_FIREBOLT_ACCOUNT": "a",
                "REVOPS_FIREBOLT_DATABASE": "d",
                "REVOPS_FIREBOLT_CLIENT_ID": "c",
                "REVOPS_FIREBOLT_CLIENT_SECRET": "s",
            }
        )


def test_a_batch_read_binds_every_id_and_chunks_under_the_url_limit(
    demo: Demo, fake: FakeFirebolt, firebolt: FireboltWarehouse
) -> None:
    """A batch's datasets through Firebolt: one query per table (ids in chunks of
    `max_bound_ids`, every id a server-side parameter), the datasets DuckDB gives one
    subject at a time."""
    deals = [(t["sf_account_id"], o) for o, t in sorted(demo.truth["opportunities"].items())]
    accounts = sorted(demo.truth["accounts"])
    assert len(deals) > firebolt.max_bound_ids >= len(accounts)
    repository = DatasetRepository(firebolt)
    repository.default_as_of()
    fake.queries.clear()
    batch = repository.reading_ahead(deals=deals, accounts=accounts)
    sent = list(fake.queries)
    alone = DatasetRepository(demo.warehouse)
    for account, deal in deals[:: len(deals) // 12]:
        assert dumped(batch.deal_dataset(account, deal)) == dumped(
            alone.deal_dataset(account, deal)
        )
    for account in accounts[:: len(accounts) // 12]:
        assert dumped(batch.account_dataset(account)) == dumped(alone.account_dataset(account))
    assert len(fake.queries) == len(sent)  # every row came from the batch's queries

    # Keyed by deal (opportunities, stage history, calls): two chunks each; by account
    # (accounts, contacts, usage, calls, tickets, agreements, billing), by owner and by
    # stage (won time, overall and per segment): one each.
    assert len(sent) == 3 * 2 + 7 + 1 + 2
    opportunity_ids = [v for sql, v, _ in sent if "FROM opportunity_d WHERE" in sql]
    assert [len(v) for v in opportunity_ids] == [100, len(deals) - 100]
    assert sorted(i for chunk in opportunity_ids for i in chunk) == sorted(o for _, o in deals)
    every_id = {o for _, o in deals} | set(accounts)
    for sql, _, _ in sent:
        assert not any(i in sql for i in every_id)
    first_chunk = next(sql for sql, _, _ in sent if "FROM opportunity_d WHERE" in sql)
    assert first_chunk.endswith(
        "WHERE opportunity_id IN (" + ", ".join(f"${i}" for i in range(1, 101)) + ")"
    )


def dumped(result: Any) -> list[Any]:
    dataset, collection, findings = result
    return [dataset.model_dump(), collection.model_dump(), [f.model_dump() for f in findings]]
