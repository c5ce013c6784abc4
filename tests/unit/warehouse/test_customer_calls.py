"""One definition of "a customer call", in two forms held equal.

`DataRules.customer_calls` (Python: a subject's calls, read whole) and
`queries.customer_call_predicate` (SQL: scans over every account) keep the same calls: on
every call of the generated warehouse, and on rows made to hit the edges (NULLs, lengths at
the thresholds, keywords anywhere in the title, LIKE wildcards in a keyword).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from services.data_agent.warehouse.queries import customer_call_params, customer_call_predicate
from services.data_agent.warehouse.rules import DataRules, load_rules

from .conftest import Demo

COLUMNS = ("call_id", "title", "is_deleted", "brief", "key_points", "next_steps")


def sql_keeps(con: duckdb.DuckDBPyConnection, table: str, rules: DataRules) -> set[str]:
    """The call ids the SQL predicate keeps (its keyword parameters bound by name)."""
    predicate = customer_call_predicate()
    params = customer_call_params()
    for name in sorted(params, key=len, reverse=True):  # kw10 before kw1
        predicate = predicate.replace(f":{name}", f"${name}")
    rows = con.execute(f"SELECT call_id FROM {table} WHERE {predicate}", params).fetchall()
    return {str(r[0]) for r in rows}


def python_keeps(rows: list[dict[str, Any]], rules: DataRules) -> set[str]:
    return {str(r["call_id"]) for r in rules.customer_calls(rows)}


def test_both_forms_keep_the_same_calls_of_the_generated_warehouse(demo: Demo) -> None:
    rules = load_rules()
    con = demo.warehouse.connection
    cur = con.execute(f"SELECT {', '.join(COLUMNS)} FROM gong_call_f")
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]
    kept = python_keeps(rows, rules)
    assert kept == sql_keeps(con, "gong_call_f", rules)
    # Not vacuous: the generator mixes in internal, near-empty and deleted calls.
    assert 0 < len(kept) < len(rows)
    assert any(r["is_deleted"] for r in rows)


def edge_rows(rules: DataRules) -> list[dict[str, Any]]:
    empty = rules.near_empty_call
    keyword = rules.internal_call_title_keywords[0]
    long_brief = "b" * (empty.max_brief_chars + 1)
    rows: list[dict[str, Any]] = [
        {"title": "Pricing review", "is_deleted": False, "brief": long_brief},
        {"title": "Pricing review", "is_deleted": None, "brief": long_brief},
        {"title": "Pricing review", "is_deleted": True, "brief": long_brief},
        {"title": None, "is_deleted": False, "brief": long_brief},
        {"title": f"Q3 {keyword.upper()} sync", "is_deleted": False, "brief": long_brief},
        {"title": f"{keyword}", "is_deleted": False, "brief": long_brief},
        {"title": "Pricing review", "is_deleted": False, "brief": "b" * empty.max_brief_chars},
        {"title": "Pricing review", "is_deleted": False, "brief": None, "key_points": None},
        {
            "title": "Pricing review",
            "is_deleted": False,
            "key_points": "k" * (empty.max_key_points_chars + 1),
        },
        {
            "title": "Pricing review",
            "is_deleted": False,
            "next_steps": "n" * (empty.max_next_steps_chars + 1),
        },
        {"title": "Ünïcödé review — 東京", "is_deleted": False, "brief": "é" * 60},
        {"title": "team_sync and 100% done", "is_deleted": False, "brief": long_brief},
        {"title": "teamXsync", "is_deleted": False, "brief": long_brief},
    ]
    for i, row in enumerate(rows):
        row["call_id"] = f"c{i}"
        for column in ("brief", "key_points", "next_steps"):
            row.setdefault(column, "")
    return rows


@pytest.mark.parametrize(
    "keywords",
    [None, ["team_sync", "100%"]],
    ids=["configured keywords", "keywords with LIKE wildcards"],
)
def test_both_forms_agree_at_the_edges(
    keywords: list[str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = load_rules()
    if keywords is not None:
        rules = rules.model_copy(update={"internal_call_title_keywords": keywords})
        monkeypatch.setattr(
            "services.data_agent.warehouse.queries.load_rules", lambda: rules, raising=True
        )
    rows = edge_rows(rules)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE calls (call_id VARCHAR, title VARCHAR, is_deleted BOOLEAN,"
        " brief VARCHAR, key_points VARCHAR, next_steps VARCHAR)"
    )
    con.executemany(
        "INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?)", [[r[c] for c in COLUMNS] for r in rows]
    )
    kept = python_keeps(rows, rules)
    assert kept == sql_keeps(con, "calls", rules)
    assert "c0" in kept and "c1" not in kept and "c3" not in kept  # NULLs leave a call out
    if keywords is not None:  # `_` matches any one character, as in LIKE
        assert "c11" not in kept and "c12" not in kept
