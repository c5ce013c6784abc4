"""The console in Chromium: sign in, filter the inbox, acknowledge from the keyboard and find
it in the audit trail, a stale-version conflict between two sessions, the deal and account
pages with their charts, replay a dead letter as an operator and be refused as a viewer.
A screenshot of each page goes to var/screenshots/console/."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from services.decision_agent.consumption.analyzer import load_consumption_rules
from services.decision_agent.consumption.usage_series import score_series
from tests.e2e.console.conftest import CHROMIUM_FLAGS, SCREENSHOTS, UNKNOWN_ACCOUNT, Console

pytestmark = pytest.mark.kafka

# Checked on every page in the browser: one h1, a label for every control, scoped table
# headers, named charts; returns the problems found.
SEMANTICS_JS = """() => {
  const problems = [];
  if (document.querySelectorAll('h1').length !== 1) problems.push('h1 count');
  for (const c of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (c.type === 'submit') continue;
    if (!c.labels.length && !c.getAttribute('aria-label')) problems.push('unlabelled ' + c.name);
  }
  for (const th of document.querySelectorAll('th')) {
    if (!['col', 'row'].includes(th.getAttribute('scope'))) problems.push('th without scope');
  }
  for (const svg of document.querySelectorAll('svg.chart')) {
    if (svg.getAttribute('role') !== 'img' || !svg.querySelector('title')) problems.push('chart');
  }
  if (!document.querySelector('main#main')) problems.push('no main landmark');
  return problems;
}"""


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def session(browser: Browser, console: Console, user: str) -> BrowserContext:
    context = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/inbox")
    expect(page).to_have_url(f"{console.url}/signin?next=%2Finbox")
    page.get_by_label("Access token").fill(console.token(user))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Inbox")
    page.close()
    return context


def shot(page: Page, name: str) -> None:
    assert page.evaluate(SEMANTICS_JS) == [], f"semantic HTML on {page.url}"
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def store(console: Console) -> sqlite3.Connection:
    conn = sqlite3.connect(console.settings.resolved_state_dir / "revops.db")
    conn.row_factory = sqlite3.Row
    return conn


def warehouse(console: Console, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(console.settings.resolved_warehouse_path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_sign_in_and_filter_the_inbox(browser: Browser, console: Console) -> None:
    context = session(browser, console, "alice")
    page = context.new_page()
    page.goto("/inbox")
    page.get_by_label("Severity").select_option("high")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"/inbox\?.*severity=high"))
    with store(console) as conn:
        (high,) = conn.execute(
            "SELECT COUNT(*) FROM revops_ai_insights WHERE priority = 'high' "
            "AND status IN ('open', 'acknowledged', 'in_progress')"
        ).fetchone()
    rows = page.locator("tr[data-insight-id]")
    expect(rows).to_have_count(high)
    assert high > 0
    assert set(page.locator("tr[data-insight-id] .badge").all_inner_texts()) == {"HIGH"}
    page.goto("/inbox")
    shot(page, "inbox")
    context.close()


def test_acknowledge_with_the_keyboard_and_find_it_in_the_audit_trail(
    browser: Browser, console: Console
) -> None:
    context = session(browser, console, "alice")
    page = context.new_page()
    page.goto("/inbox?status=open")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("/")  # the search shortcut
    assert page.evaluate("document.activeElement.id") == "f-q"
    row = page.locator("tr[data-status='open']").first
    insight_id = row.get_attribute("data-insight-id")
    note = row.get_by_role("textbox")
    note.focus()
    page.keyboard.type("owner called, following up")
    page.keyboard.press("Tab")  # the first action button: Acknowledge
    assert page.evaluate("document.activeElement.dataset.action") == "ack"
    page.keyboard.press("Enter")
    expect(page.locator("[data-flash='ok']")).to_contain_text("Acknowledged")
    page.goto(f"/insights/{insight_id}")
    audit = page.locator("tr[data-action='ack'][data-actor='alice']")
    expect(audit).to_have_count(1)
    expect(audit).to_contain_text("owner called, following up")
    expect(page.locator("[data-status]").first).to_have_text("Acknowledged")
    shot(page, "insight")
    with store(console) as conn:
        actor, note_text = conn.execute(
            "SELECT actor, note FROM revops_ai_insight_audit WHERE insight_id = ? "
            "ORDER BY audit_id DESC LIMIT 1",
            (insight_id,),
        ).fetchone()
    assert (actor, note_text) == ("alice", "owner called, following up")
    context.close()


def test_a_stale_version_from_a_second_session_is_shown_as_changed_by_someone_else(
    browser: Browser, console: Console
) -> None:
    alice, olga = session(browser, console, "alice"), session(browser, console, "olga")
    page_a, page_b = alice.new_page(), olga.new_page()
    page_a.goto("/inbox?status=open")
    insight_id = page_a.locator("tr[data-status='open']").first.get_attribute("data-insight-id")
    page_b.goto("/inbox?status=open")  # olga sees the same version
    row_a = page_a.locator(f"tr[data-insight-id='{insight_id}']")
    row_b = page_b.locator(f"tr[data-insight-id='{insight_id}']")
    row_a.get_by_role("button", name="Start").click()
    expect(page_a.locator("[data-flash='ok']")).to_contain_text("Started")
    row_b.get_by_role("button", name="Dismiss").click()  # from her stale page
    conflict = page_b.locator("[data-flash='conflict']")
    expect(conflict).to_contain_text("Changed by someone else")
    expect(conflict).to_contain_text("is now in_progress")
    expect(conflict).to_contain_text("start by alice")
    shot(page_b, "inbox-conflict")
    with store(console) as conn:
        (status,) = conn.execute(
            "SELECT status FROM revops_ai_insights WHERE insight_id = ?", (insight_id,)
        ).fetchone()
    assert status == "in_progress"  # olga's dismissal did not overwrite it
    alice.close()
    olga.close()


def test_the_deal_page_charts_every_analysis(browser: Browser, console: Console) -> None:
    with store(console) as conn:
        opportunity_id, analyses = conn.execute(
            "SELECT opportunity_id, COUNT(*) FROM revops_ai_analysis_history "
            "WHERE analysis_type = 'deal_quality' GROUP BY 1 ORDER BY 1 LIMIT 1"
        ).fetchone()
    context = session(browser, console, "victor")
    page = context.new_page()
    page.goto(f"/deals/{opportunity_id}")
    chart = page.locator("svg#score-history")
    expect(chart.locator("polyline[data-name='deal quality']")).to_have_attribute(
        "data-points", str(analyses)
    )
    expect(page.get_by_role("heading", name="Flags")).to_be_visible()
    expect(page.get_by_role("heading", name="Stage history")).to_be_visible()
    assert page.locator("[data-score='deal_quality']").count() == 1
    shot(page, "deal")
    context.close()


def test_the_account_page_charts_a_year_of_usage_with_its_anomaly_events(
    browser: Browser, console: Console
) -> None:
    with store(console) as conn:
        (account_id,) = conn.execute(
            "SELECT account_id FROM revops_ai_analysis_history "
            "WHERE analysis_type = 'consumption' ORDER BY account_id LIMIT 1"
        ).fetchone()
    (as_of,) = warehouse(console, "SELECT value FROM warehouse_meta WHERE key = 'as_of'")[0]
    day = date.fromisoformat(as_of)
    rows = warehouse(
        console,
        "SELECT usage_date, COALESCE(query_count, 0) FROM consumption_daily_f "
        "WHERE sf_account_id = ? AND usage_date > ? AND usage_date <= ? ORDER BY usage_date",
        account_id,
        day - timedelta(days=365),
        day,
    )
    rules = load_consumption_rules(console.settings.rules_dir)
    epoch = np.array([(d - date(1970, 1, 1)).days * 86_400 for d, _ in rows], dtype=float)
    scores = score_series(epoch, np.array([float(v) for _, v in rows]), rules.anomalies.detector)
    events = [d.isoformat() for (d, _), s in zip(rows, scores.score, strict=True) if s >= 0.6]
    context = session(browser, console, "victor")
    page = context.new_page()
    page.goto(f"/accounts/{account_id}")
    chart = page.locator("svg#usage-query_count")
    expect(chart.locator("polyline")).to_have_attribute("data-points", str(len(rows)))
    markers = chart.locator("g.event-marker")
    expect(markers).to_have_count(len(events))
    assert [m.get_attribute("data-date") for m in markers.all()] == events
    expect(chart.locator("g.trend-window--recent")).to_have_attribute("data-end", as_of)
    assert page.locator("svg.chart[id^='usage-']").count() == 7
    expect(page.get_by_role("heading", name="Support tickets")).to_be_visible()
    shot(page, "account")
    context.close()


def test_overview_and_operations_pages(browser: Browser, console: Console) -> None:
    context = session(browser, console, "victor")
    page = context.new_page()
    page.goto("/overview")
    expect(page.locator("[data-pipeline-at-risk]")).to_be_visible()
    shot(page, "overview")
    page.goto("/operations")
    flow = page.locator("tr[data-request-id]").first
    request_id = flow.get_attribute("data-request-id")
    shot(page, "operations")
    page.goto(f"/operations/flows/{request_id}")
    stages = page.locator("tr[data-stage]")
    expect(stages.first).to_have_attribute("data-stage", "trigger accepted")
    # the demo ran every service on this machine: their stage times are known here
    expect(page.locator("tr[data-stage='dataset published']")).to_have_attribute(
        "data-state", "done"
    )
    expect(page.locator("tr[data-stage='flow output published']")).to_have_attribute(
        "data-state", "done"
    )
    shot(page, "flow")
    context.close()


def _dead_letter_row(page: Page, console: Console) -> Any:
    topic = f"{console.settings.topics.triggers}.dlq"
    row = page.locator(f"tr[data-topic='{topic}'][data-code='UNKNOWN_SUBJECT']")
    for _ in range(60):  # the console follows the DLQ topics: wait for the record to arrive
        if row.count():
            return row
        page.wait_for_timeout(500)
        page.reload()
    raise AssertionError(f"no UNKNOWN_SUBJECT dead letter for {UNKNOWN_ACCOUNT} on {topic}")


def test_a_viewer_may_not_replay(browser: Browser, console: Console) -> None:
    context = session(browser, console, "victor")
    page = context.new_page()
    page.goto("/operations")
    row = _dead_letter_row(page, console)
    expect(row.get_by_role("button")).to_have_count(0)
    expect(row).to_contain_text("operators only")
    csrf = page.locator("input[name='csrf']").first.get_attribute("value")
    forged = page.request.post(
        "/operations/dlq/dry-run",
        form={"csrf": csrf or "", "topic": row.get_attribute("data-topic") or "", "code": "x"},
    )
    assert forged.status == 403 and "only operators" in forged.text()
    context.close()


def test_an_operator_replays_a_dead_letter_after_a_dry_run(
    browser: Browser, console: Console
) -> None:
    context = session(browser, console, "alice")
    page = context.new_page()
    page.goto("/operations")
    row = _dead_letter_row(page, console)
    row.get_by_role("button", name="Dry run").click()
    expect(page.locator("[data-would-replay]")).to_have_attribute("data-would-replay", "1")
    expect(page.locator("tr[data-outcome='would replay']")).to_have_count(1)
    shot(page, "dlq-dry-run")
    page.get_by_label("Yes, replay 1 message").check()
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("[data-flash='ok']")).to_contain_text("1 replayed")
    replays = page.locator("table.replays tbody tr")
    expect(replays.first).to_contain_text("alice")
    expect(replays.first).to_contain_text("UNKNOWN_SUBJECT")
    log = sqlite3.connect(console.settings.resolved_state_dir / "dlq-replays.db")
    try:
        (target,) = log.execute("SELECT target_topic FROM replays").fetchone()
    finally:
        log.close()
    assert target == console.settings.topics.triggers
    context.close()
