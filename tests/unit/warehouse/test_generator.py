"""The generator is deterministic and its tables match its ground-truth file."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from demo.crm import STAGE_SHARES
from demo.seed import ground_truth_path, seed_warehouse
from demo.usage import PATTERNS
from services.data_agent.warehouse.schema import TABLES

from .conftest import ACCOUNTS, AS_OF, Demo


def table_hashes(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for name, table in TABLES.items():
            key = ", ".join(table.key)
            rows = con.execute(f"SELECT * FROM {name} ORDER BY {key}").fetchall()
            out[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        con.close()


def test_same_seed_gives_identical_tables_and_truth(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    seed_warehouse(a, accounts=30, seed=3, as_of=AS_OF)
    seed_warehouse(b, accounts=30, seed=3, as_of=AS_OF)
    seed_warehouse(c, accounts=30, seed=4, as_of=AS_OF)
    hashes_a = table_hashes(a)
    assert hashes_a == table_hashes(b)
    assert ground_truth_path(a).read_bytes() == ground_truth_path(b).read_bytes()
    differing = {k for k, v in table_hashes(c).items() if hashes_a[k] != v}
    assert {"salesforce_account_d", "opportunity_d", "consumption_daily_f"} <= differing


def test_demo_size_generates_quickly(tmp_path: Path) -> None:
    started = time.perf_counter()
    truth = seed_warehouse(tmp_path / "demo.duckdb", accounts=50, seed=7, as_of=AS_OF)
    assert time.perf_counter() - started < 5.0
    rows = truth.summary["rows"]
    assert rows["consumption_daily_f"] == 50 * 365
    assert 100 <= rows["opportunity_d"] <= 140


def test_failed_seed_leaves_no_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        seed_warehouse(tmp_path / "x.duckdb", accounts=5, days=30, as_of=AS_OF)
    assert list(tmp_path.iterdir()) == []


def test_row_counts_match_ground_truth(demo: Demo) -> None:
    for table, count in demo.truth["summary"]["rows"].items():
        assert demo.sql(f"SELECT COUNT(*) FROM {table}")[0][0] == count, table
    assert demo.sql("SELECT COUNT(DISTINCT sf_account_id) FROM consumption_daily_f")[0][0] == (
        ACCOUNTS
    )


def test_account_classes_and_patterns_match_quotas(demo: Demo) -> None:
    accounts = demo.truth["accounts"]
    types = dict(demo.sql("SELECT sf_account_id, sf_account_type_custom FROM salesforce_account_d"))
    expected_type = {"commit": "Commit Customer", "plg": "PLG Customer"}
    for aid, entry in accounts.items():
        if entry["customer_class"] in expected_type:
            assert types[aid] == expected_type[entry["customer_class"]]
        else:
            assert types[aid] not in expected_type.values()
    patterns = Counter(a["pattern"] for a in accounts.values())
    for pattern, share in PATTERNS.items():
        assert abs(patterns[pattern] - share * ACCOUNTS) <= 1, pattern
    counts = demo.truth["summary"]["counts"]
    assert counts["class.commit"] == 18 and counts["class.plg"] == 24


def test_stages_cover_every_stage_in_proportion(demo: Demo) -> None:
    stages = Counter(dict(demo.sql("SELECT stage_name, COUNT(*) FROM opportunity_d GROUP BY 1")))
    total = sum(stages.values())
    for stage, share in STAGE_SHARES.items():
        if stage == "Closed":
            closed = stages["Closed Won"] + stages["Closed Lost"]
            assert abs(closed - share * total) <= 1
            assert abs(stages["Closed Won"] - stages["Closed Lost"]) <= 1
        else:
            assert abs(stages[stage] - share * total) <= 1, stage
    truth = Counter(o["stage"] for o in demo.truth["opportunities"].values())
    assert truth == stages


def test_every_deal_has_stage_history_ending_in_its_stage(demo: Demo) -> None:
    last = dict(
        demo.sql(
            "SELECT opportunity_id, arg_max(to_stage, started_at_ts) FROM opportunity_stage_f "
            "GROUP BY 1"
        )
    )
    opps = dict(demo.sql("SELECT opportunity_id, stage_name FROM opportunity_d"))
    assert last == opps
    regressions = [o for o, t in demo.truth["opportunities"].items() if t["stage_regression"]]
    assert regressions, "the demo must contain stage regressions"
    for oid in regressions:
        stages = [
            r[0]
            for r in demo.sql(
                "SELECT to_stage FROM opportunity_stage_f WHERE opportunity_id = ? "
                "ORDER BY started_at_ts",
                oid,
            )
        ]
        assert len(stages) != len(set(stages))


def test_competitors_in_field_and_calls(demo: Demo) -> None:
    opps = demo.truth["opportunities"]
    in_field = {o for o, t in opps.items() if t["competitor_in_field"]}
    rows = dict(demo.sql("SELECT opportunity_id, competitors FROM opportunity_d"))
    assert {o for o, c in rows.items() if c} == in_field
    for oid in in_field:
        assert rows[oid] == opps[oid]["competitor"]
    in_calls = {o for o, t in opps.items() if t["competitor_mentioned_in_calls"]}
    assert in_calls
    for oid in in_calls:
        hits = demo.sql(
            "SELECT COUNT(*) FROM gong_call_f WHERE opportunity_id = ? AND key_points LIKE ?",
            oid,
            f"%evaluating {opps[oid]['competitor']}%",
        )
        assert hits[0][0] >= 1


def test_internal_and_near_empty_calls_are_mixed_in(demo: Demo) -> None:
    counts = demo.truth["summary"]["counts"]
    assert counts["calls.internal_calls"] > 0 and counts["calls.near_empty_calls"] > 0
    titles = [r[0] for r in demo.sql("SELECT title FROM gong_call_f")]
    for word in ("Internal", "Standup", "Team Meeting", "All Hands", "Weekly Sales Cadence"):
        assert any(word in t for t in titles), word


def test_stale_close_dates_are_in_the_past_on_open_deals(demo: Demo) -> None:
    opps = demo.truth["opportunities"]
    close = dict(demo.sql("SELECT opportunity_id, close_date FROM opportunity_d"))
    stale = [o for o, t in opps.items() if t["stale_close_date"]]
    assert stale
    for oid, t in opps.items():
        if t["is_open"]:
            assert (close[oid] < AS_OF) == t["stale_close_date"], oid


def daily(demo: Demo, account_id: str, column: str = "query_count") -> dict[date, float]:
    return dict(
        demo.sql(
            f"SELECT usage_date, {column} FROM consumption_daily_f WHERE sf_account_id = ?",
            account_id,
        )
    )


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def window(series: dict[date, float], end: date, days: int) -> list[float]:
    return [series[end - timedelta(days=i)] for i in range(days)]


def test_injected_usage_patterns_have_their_shape(demo: Demo) -> None:
    for aid, acc in demo.truth["accounts"].items():
        series = daily(demo, aid)
        pattern = acc["pattern"]
        before = mean(window(series, AS_OF - timedelta(days=100), 56))
        last_week = mean(window(series, AS_OF, 7))
        if pattern == "gradual_decline":
            assert last_week <= 0.7 * before, aid  # down >= 30%
        elif pattern == "cliff":
            assert last_week <= 0.3 * before, aid  # down >= 70%
        elif pattern == "complete_stop":
            start = date.fromisoformat(acc["pattern_start"])
            idle = [d for d, v in series.items() if d >= start]
            assert len(idle) >= 14 and all(series[d] == 0 for d in idle), aid
        elif pattern == "spike":
            start = date.fromisoformat(acc["pattern_start"])
            assert series[start] > 3 * mean(window(series, start - timedelta(days=1), 28))
        elif pattern == "cost_anomaly":
            cost = daily(demo, aid, "cost_usd")
            recent = mean(window(cost, AS_OF, 21))
            assert recent >= 3 * mean(window(cost, AS_OF - timedelta(days=40), 40))
            assert mean(window(series, AS_OF, 21)) < 1.3 * mean(
                window(series, AS_OF - timedelta(days=40), 40)
            )


def test_weekday_seasonality_and_holidays(demo: Demo) -> None:
    share = demo.sql(
        "SELECT SUM(CASE WHEN isodow(usage_date) <= 5 THEN query_count END) / SUM(query_count) "
        "FROM consumption_daily_f u JOIN (SELECT sf_account_id FROM consumption_daily_f GROUP BY 1 "
        "HAVING MIN(query_count) > 0) s USING (sf_account_id)"
    )[0][0]
    target = demo.truth["summary"]["weekday_share_target"]
    assert abs(share - target) < 0.03
    christmas, before = demo.sql(
        "SELECT SUM(CASE WHEN usage_date = DATE '2024-12-25' THEN query_count END), "
        "SUM(CASE WHEN usage_date = DATE '2024-12-18' THEN query_count END) "
        "FROM consumption_daily_f"
    )[0]
    assert christmas < 0.3 * before


def test_ticket_bursts_and_renewals(demo: Demo) -> None:
    accounts = demo.truth["accounts"]
    recent = dict(
        demo.sql(
            "SELECT sf_account_id, COUNT(*) FROM support_ticket_f WHERE priority IN ('P1','P2') "
            "AND created_at_ts >= ? GROUP BY 1",
            AS_OF - timedelta(days=29),
        )
    )
    bursts = {a for a, t in accounts.items() if t["p1_p2_burst_last_30d"] >= 3}
    assert bursts and {a for a, n in recent.items() if n >= 3} == bursts
    renewals = dict(demo.sql("SELECT sf_account_id, end_date FROM agreement_f WHERE is_active"))
    near = {a for a, t in accounts.items() if t["near_renewal"]}
    assert near
    assert {a for a, d in renewals.items() if (d - AS_OF).days < 90} == near


def test_deal_quality_relates_to_winning(demo: Demo) -> None:
    closed = [t for t in demo.truth["opportunities"].values() if not t["is_open"]]

    def win_rate(cls: str) -> float:
        group = [t["won"] for t in closed if t["meddpicc_class"] == cls]
        return sum(group) / len(group)

    assert win_rate("complete") > win_rate("missing") + 0.3
    no_calls = [t["won"] for t in closed if t["no_customer_calls"]]
    with_calls = [t["won"] for t in closed if not t["no_customer_calls"]]
    assert mean(no_calls) < mean(with_calls)


def test_billing_events_are_monthly_usage_invoices(demo: Demo) -> None:
    paying = {a for a, t in demo.truth["accounts"].items() if t["customer_class"] != "prospect"}
    billed = dict(demo.sql("SELECT sf_account_id, COUNT(*) FROM billing_event_f GROUP BY 1"))
    assert set(billed) == paying
    assert set(billed.values()) == {12}  # July 2024 .. June 2025, all whole months
    aid = sorted(paying)[0]
    invoice = demo.sql(
        "SELECT amount_usd FROM billing_event_f WHERE sf_account_id = ? AND event_date = ?",
        aid,
        date(2025, 5, 31),
    )[0][0]
    usage = demo.sql(
        "SELECT SUM(cost_usd) FROM consumption_daily_f WHERE sf_account_id = ? "
        "AND usage_date BETWEEN DATE '2025-05-01' AND DATE '2025-05-31'",
        aid,
    )[0][0]
    assert invoice == pytest.approx(usage, abs=0.05)


def test_generated_customers_close_on_the_detector_s_calendar_days() -> None:
    import numpy as np

    from demo.usage import holiday_mask, product_holidays
    from services.common.settings import Settings
    from services.decision_agent.consumption.analyzer import load_consumption_rules

    detector = load_consumption_rules(Settings().rules_dir).anomalies.detector
    for first, last, thanksgiving in (
        ("2026-11-20", "2026-11-30", {"2026-11-26", "2026-11-27"}),
        # A year no list in the rules ever covered: the calendar computes its dates.
        ("2031-11-20", "2031-11-30", {"2031-11-27", "2031-11-28"}),
    ):
        days = np.arange(np.datetime64(first), np.datetime64(last) + 1)
        listed = product_holidays(date.fromisoformat(first), date.fromisoformat(last))
        closed = {str(d) for d, m in zip(days, holiday_mask(days, listed), strict=True) if m}
        assert closed == thanksgiving
        expected = detector.closed_days(date.fromisoformat(first), date.fromisoformat(last))
        assert closed == {d.isoformat() for d in expected}
