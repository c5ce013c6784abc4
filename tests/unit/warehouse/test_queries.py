"""Every named query runs on the DuckDB adapter; binding never puts values in SQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.common.stages import load_stage_model
from services.data_agent.fleet import fleet_params
from services.data_agent.warehouse.base import Warehouse
from services.data_agent.warehouse.queries import (
    ALL_QUERIES,
    SET_QUERIES,
    Query,
    QueryParameterError,
    customer_call_params,
    won_time_by_stage,
)
from services.data_agent.warehouse.rules import load_rules

from .conftest import AS_OF, Demo


def params_for(demo: Demo) -> dict[str, object]:
    aid, acc = next(
        (a, t) for a, t in demo.truth["accounts"].items() if t["customer_class"] == "commit"
    )
    oid = acc["opportunities"][0]
    owner = demo.sql("SELECT sf_owner_id FROM salesforce_account_d WHERE sf_account_id = ?", aid)[
        0
    ][0]
    return {
        "account_id": aid,
        "opportunity_id": oid,
        "user_id": owner,
        "before_ts": datetime(2025, 7, 1),
        "after_date": AS_OF - timedelta(days=365),
        "as_of": AS_OF,
        "limit": 5,
        "stage": "Discover",
        "seg_product_id": None,
        "product_id": "no products in the demo",
        **customer_call_params(),
        **fleet_params(AS_OF, load_rules().fleet),
    }


def test_adapter_satisfies_protocol(demo: Demo) -> None:
    assert isinstance(demo.warehouse, Warehouse)


@pytest.mark.parametrize("name", sorted(ALL_QUERIES))
def test_every_query_runs_and_returns_rows(demo: Demo, name: str) -> None:
    query = ALL_QUERIES[name]
    params = {k: v for k, v in params_for(demo).items() if k in query.param_names}
    rows = demo.warehouse.fetch_all(query, params)
    if name == "product_by_id":  # the demo has no product catalog (imports have one)
        assert rows == []
        return
    assert rows, name
    chunks = list(demo.warehouse.fetch_chunks(query, params, chunk_rows=2))
    assert [r for c in chunks for r in c] == rows
    assert all(len(c) <= 2 for c in chunks)


def test_list_queries_put_the_id_first(demo: Demo) -> None:
    for name in ("list_accounts", "list_opportunities", "list_open_opportunities"):
        rows = demo.warehouse.fetch_all(ALL_QUERIES[name], {"limit": 3})
        assert len(rows) == 3
        assert next(iter(rows[0])).endswith("_id")
    open_rows = demo.warehouse.fetch_all(ALL_QUERIES["list_open_opportunities"], {"limit": 1000})
    assert open_rows and all(
        r["stage_name"] not in ("Closed Won", "Closed Lost") for r in open_rows
    )
    assert len(open_rows) == sum(t["is_open"] for t in demo.truth["opportunities"].values())


def test_binding() -> None:
    q = Query("t", "SELECT * FROM x WHERE a = :a AND b > :b AND c = :a")
    assert q.bind({"a": "'; DROP TABLE x; --", "b": 2}) == (
        "SELECT * FROM x WHERE a = ? AND b > ? AND c = ?",
        ("'; DROP TABLE x; --", 2, "'; DROP TABLE x; --"),
    )
    assert q.bind_numeric({"a": 1, "b": 2}) == (
        "SELECT * FROM x WHERE a = $1 AND b > $2 AND c = $1",
        [1, 2],
    )
    with pytest.raises(QueryParameterError, match="needs parameters"):
        q.bind({"a": 1})


def test_injection_through_parameters_is_inert(demo: Demo) -> None:
    evil = "x' OR '1'='1"
    assert demo.warehouse.fetch_all(ALL_QUERIES["account_by_id"], {"account_id": evil}) == []
    assert (
        demo.warehouse.fetch_all(
            ALL_QUERIES["opportunity_by_id"], {"opportunity_id": "1; DROP TABLE opportunity_d"}
        )
        == []
    )
    assert demo.sql("SELECT COUNT(*) FROM opportunity_d")[0][0] > 0


@pytest.mark.parametrize("name", [*sorted(SET_QUERIES), "won_time_by_stage", "won_time_by_segment"])
def test_every_set_query_binds_its_ids_and_runs(demo: Demo, name: str) -> None:
    query = {**SET_QUERIES, **{q.name: q for q in won_time_by_stage(load_stage_model())}}[name]
    evil = "x' OR '1'='1"
    bound, ids = query.for_ids([evil, "001000000000001", "Discover"])
    assert evil not in bound.sql and list(ids.values()) == [evil, "001000000000001", "Discover"]
    assert f"{query.column} IN (:id_0, :id_1, :id_2)" in bound.sql
    params = {**params_for(demo), **ids}
    rows = demo.warehouse.fetch_all(bound, {k: params[k] for k in bound.param_names if k in params})
    assert all(row[query.key] in ids.values() for row in rows)
    nothing, no_ids = query.for_ids([])
    assert (
        no_ids == {}
        and demo.warehouse.fetch_all(
            nothing, {k: params[k] for k in nothing.param_names if k in params}
        )
        == []
    )
