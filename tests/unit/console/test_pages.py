"""Deal, account, overview, lists and operations pages show what the stores and the
warehouse hold: every figure checked against a direct query."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
from markupsafe import escape
from starlette.testclient import TestClient

from contracts.common import utcnow
from services.console.pages import Components
from services.decision_agent.consumption.analyzer import load_consumption_rules
from services.decision_agent.consumption.usage_series import score_series
from services.execution_agent.store import to_db_time
from tests.unit.console.conftest import World


def esc(text: str | None) -> str:
    return str(escape(text or ""))


def warehouse_rows(world: World, sql: str, *params: object) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(world.settings.resolved_warehouse_path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_the_deal_page_shows_the_analysis_as_decided(
    operator: TestClient, world: World, components: Components
) -> None:
    account_id, opportunity_id = world.deals[0]
    page = operator.get(f"/deals/{opportunity_id}").text
    analysis = components.subjects._history.latest_result(
        "deal_quality", account_id, opportunity_id
    )
    assert analysis is not None and analysis.request_id == f"deal-{opportunity_id}-2"
    for name, score in analysis.analysis_results.scores.items():
        assert f'data-score="{name}">{score}<' in page
    for detail in analysis.analysis_results.score_details.values():
        assert f"({detail.band}), factor breakdown" in page
        assert all(esc(f.explanation) in page for f in detail.factors)
    for flag in analysis.analysis_results.flags:
        assert esc(flag.description) in page
    for rec in analysis.recommendations:
        assert esc(rec.description) in page
    assert "Risk mitigations" in page
    stages = warehouse_rows(
        world,
        "SELECT to_stage FROM opportunity_stage_f WHERE opportunity_id = ? ORDER BY started_at_ts",
        opportunity_id,
    )
    history = page[page.index("stages-heading") :]
    assert [s for (s,) in stages] == re.findall(r'<th scope="row">([^<]+)</th>', history)[
        : len(stages)
    ]
    chart = re.search(r'<svg class="chart" id="score-history"[^>]*>.*?</svg>', page, re.S)
    assert chart
    points = re.findall(r'data-name="deal quality" data-points="(\d+)"', chart.group(0))
    assert points == ["3"]  # three analyses of the deal, a day apart


def test_quoted_call_passages_are_highlighted_and_escaped(components: Components) -> None:
    from contracts.common import Evidence
    from services.console.evidence import highlight, quotes_by_call

    quotes = quotes_by_call(
        [
            Evidence(
                source="gong_call_f", ref="C1", snippet="...need   sub-second <dashboards>..."
            ),
            Evidence(source="gong_call_f", ref="C2", snippet="other call"),
            Evidence(source="opportunity_d", ref="C1", snippet="not a call"),
        ]
    )
    assert quotes == {"C1": {"need sub-second <dashboards>"}, "C2": {"other call"}}
    markup, count = highlight(
        "We NEED sub-second\n<dashboards> & more; we need sub-second <dashboards>.", quotes["C1"]
    )
    assert count == 2
    assert str(markup) == (
        'We <mark class="quote">NEED sub-second &lt;dashboards&gt;</mark> &amp; more; we '
        '<mark class="quote">need sub-second &lt;dashboards&gt;</mark>.'
    )
    assert highlight(None, {"x"}) == ("", 0)


def usage_series(world: World, account_id: str, metric: str) -> tuple[list[date], list[float]]:
    rows = warehouse_rows(
        world,
        f"SELECT usage_date, COALESCE({metric}, 0) FROM consumption_daily_f "
        "WHERE sf_account_id = ? AND usage_date > ? AND usage_date <= ? ORDER BY usage_date",
        account_id,
        world.as_of - timedelta(days=365),
        world.as_of,
    )
    return [d for d, _ in rows], [float(v) for _, v in rows]


def test_each_usage_chart_has_every_day_and_the_detector_s_events(
    operator: TestClient, world: World
) -> None:
    account_id = world.accounts[0]
    page = operator.get(f"/accounts/{account_id}").text
    rules = load_consumption_rules(world.settings.rules_dir)
    cfg = rules.anomalies.detector
    for metric in ("query_count", "cost_usd", "active_users"):
        days, values = usage_series(world, account_id, metric)
        svg = re.search(rf'<svg class="chart" id="usage-{metric}".*?</svg>', page, re.S)
        assert svg, metric
        assert re.findall(r'data-points="(\d+)"', svg.group(0)) == [str(len(days))]
        epoch = np.array([(d - date(1970, 1, 1)).days * 86_400 for d in days], dtype=float)
        scored = score_series(epoch, np.array(values), cfg, step_s=86_400)
        expected = [d.isoformat() for d, s in zip(days, scored.score, strict=True) if s >= 0.6]
        marked = re.findall(
            r'class="event-marker event-marker--anomaly" data-date="([^"]+)"', svg.group(0)
        )
        assert marked == expected
        windows = re.findall(
            r'trend-window--(\w+)" data-start="([^"]+)" data-end="([^"]+)"', svg.group(0)
        )
        recent_start = world.as_of - timedelta(days=rules.trend.recent_days - 1)
        assert ("recent", recent_start.isoformat(), world.as_of.isoformat()) in windows
        assert windows[0][0] == "prior"


def test_the_account_page_shows_health_over_time_contract_tickets_and_deals(
    operator: TestClient, world: World, components: Components
) -> None:
    account_id = world.accounts[0]
    page = operator.get(f"/accounts/{account_id}").text
    health = re.search(r'<svg class="chart" id="health-history".*?</svg>', page, re.S)
    assert health
    assert re.findall(r'data-name="([^"]+)" data-points="(\d+)"', health.group(0)) == [
        ("customer health", "3"),
        ("churn risk", "3"),
    ]
    current = components.subjects._health.get(account_id)
    assert current is not None and f'data-health="{current.score}"' in page
    tickets = warehouse_rows(
        world,
        "SELECT ticket_id FROM support_ticket_f WHERE sf_account_id = ? AND created_at_ts < ?",
        account_id,
        world.as_of + timedelta(days=1),
    )
    assert all(f'<th scope="row">{t}</th>' in page for (t,) in tickets)
    ends = warehouse_rows(
        world,
        "SELECT max(end_date) FROM agreement_f WHERE sf_account_id = ? AND is_active "
        "AND end_date >= ? AND start_date <= ?",
        account_id,
        world.as_of,
        world.as_of,
    )
    renewal = ends[0][0]
    assert f'data-renewal="{renewal.isoformat() if renewal else ""}"' in page
    open_deals = warehouse_rows(
        world,
        "SELECT opportunity_id FROM opportunity_d WHERE sf_account_id = ? "
        "AND stage_name NOT IN ('Closed Won', 'Closed Lost')",
        account_id,
    )
    deals_section = page[page.index("deals-heading") : page.index("tickets-heading")]
    assert sorted(re.findall(r'href="/deals/([^"]+)"', deals_section)) == sorted(
        o for (o,) in open_deals
    )


def test_the_overview_adds_up(operator: TestClient, components: Components) -> None:
    with components.inbox._store.reader() as conn:
        open_deals = conn.execute(
            "SELECT d.opportunity_id, d.account_id, d.amount, l.headline_score "
            "FROM console_deals d "
            "LEFT JOIN revops_ai_latest_analysis l ON l.opportunity_id = d.opportunity_id "
            "AND l.analysis_type = 'deal_quality' WHERE d.is_open = 1"
        ).fetchall()
        risky = {
            r[0]
            for r in conn.execute(
                "SELECT subject_key FROM revops_ai_insights WHERE priority IN "
                "('critical','high') AND opportunity_id IS NOT NULL AND "
                f"{components.inbox._store.dialect.json_text('payload', 'flag_type')} = 'risk'"
            )
        }
        bands = dict(conn.execute("SELECT band, COUNT(*) FROM revops_ai_health GROUP BY 1"))
    at_risk = sum(
        d["amount"] or 0
        for d in open_deals
        if (d["headline_score"] is not None and d["headline_score"] < 50)
        or f"{d['account_id']}|{d['opportunity_id']}" in risky
    )
    page = operator.get("/overview").text
    shown = float(re.search(r'data-pipeline-at-risk="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert shown == at_risk > 0
    for band, count in bands.items():
        assert f'data-band="{band}">{count}<' in page
    since = to_db_time(utcnow() - timedelta(days=1))
    with components.inbox._store.reader() as conn:
        (created,) = conn.execute(
            "SELECT COUNT(*) FROM revops_ai_insights WHERE created_at >= ?", (since,)
        ).fetchone()
    new = re.search(r'id="changes-new">New insights <span class="count" data-count="(\d+)"', page)
    assert new and int(new.group(1)) == created > 0


def test_the_deal_and_account_lists_page_through_the_directory(
    operator: TestClient, world: World
) -> None:
    (count,) = warehouse_rows(
        world,
        "SELECT COUNT(*) FROM opportunity_d WHERE stage_name NOT IN ('Closed Won','Closed Lost')",
    )[0]
    page = operator.get("/deals").text
    assert f"{count} result" in page
    (accounts,) = warehouse_rows(world, "SELECT COUNT(*) FROM salesforce_account_d")[0]
    assert f"{accounts} result" in operator.get("/accounts").text
    analysed = operator.get(f"/deals?q={world.deals[0][1]}").text
    assert f"/deals/{world.deals[0][1]}" in analysed and "1 result" in analysed


def test_operations_lists_flows_and_each_flow_s_timeline(
    operator: TestClient, world: World
) -> None:
    page = operator.get("/operations").text
    flows = re.findall(r'<tr data-request-id="([^"]+)">', page)
    assert len(flows) == 18 and "No dead letters" in page
    opportunity_id = world.deals[0][1]
    timeline = operator.get(f"/operations/flows/deal-{opportunity_id}-2").text
    stages = re.findall(r'data-stage="([^"]+)" data-state="([^"]+)"', timeline)
    names = [name for name, _ in stages]
    assert names[:4] == [
        "trigger accepted",
        "dataset published",
        "decision published",
        "actions planned",
    ]
    assert names[-2:] == ["flow complete", "flow output published"]
    assert ("dataset published", "unknown") in stages  # no data agent ran: said, not invented
    assert names.count("delivery") >= 1 and ("delivery", "pending") in stages


def test_unknown_subjects_are_a_404_page(operator: TestClient) -> None:
    for path in ("/deals/006999", "/accounts/001999", "/insights/none", "/operations/flows/x"):
        response = operator.get(path)
        assert response.status_code == 404 and "<h1>Not found</h1>" in response.text
