"""The inbox: filters, search and paging agree with the insights table; changes from the
list land in the audit trail with the user; a stale version is reported, never applied."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from starlette.testclient import TestClient

from contracts.common import utcnow
from services.common.stores.database import Connection
from services.console.inbox import Inbox, InboxFilter
from services.console.pages import Components
from services.execution_agent.store import to_db_time
from tests.unit.console.conftest import BASE_URL, csrf_of, sign_in

ROW = re.compile(r'data-insight-id="([^"]+)" data-status="([^"]+)" data-version="(\d+)"')


def first_row(page_text: str) -> tuple[str, str, str]:
    match = ROW.search(page_text)
    assert match, "the page lists an insight"
    return match.group(1), match.group(2), match.group(3)


def ids_on(page_text: str) -> list[str]:
    return [m.group(1) for m in ROW.finditer(page_text)]


def db(components: Components) -> AbstractContextManager[Connection]:
    """The execution agent's store, on the engine this test runs on."""
    return components.insights.store.reader()


def rows(components: Components, sql: str) -> list[Any]:
    """Every row `sql` reads through the inbox's store (the insights and the console's
    directory tables together; `db` holds the insights only on SQLite)."""
    with components.inbox._store.reader() as conn:
        return list(conn.execute(sql).fetchall())


def test_the_default_view_is_every_active_insight_most_severe_first(
    operator: TestClient, components: Components
) -> None:
    with db(components) as conn:
        expected = {
            r[0]
            for r in conn.execute(
                "SELECT insight_id FROM revops_ai_insights "
                "WHERE status IN ('open','acknowledged','in_progress')"
            )
        }
        weight = dict(conn.execute("SELECT insight_id, impact_score FROM revops_ai_insights"))
    shown = ids_on(operator.get("/inbox").text)
    assert set(shown) == expected and len(shown) == len(expected) > 5
    weights = [weight[i] for i in shown]
    assert weights == sorted(weights, reverse=True)


def test_each_filter_matches_the_table(operator: TestClient, components: Components) -> None:
    with db(components) as conn:
        rows = [dict(r) for r in conn.execute("SELECT * FROM revops_ai_insights")]
    high = {r["insight_id"] for r in rows if r["priority"] == "high"}
    assert (
        ids_on(operator.get("/inbox?severity=high").text)
        and set(ids_on(operator.get("/inbox?severity=high").text)) == high
    )
    churn = {r["insight_id"] for r in rows if r["category"] == "churn_risk"}
    assert set(ids_on(operator.get("/inbox?category=churn_risk").text)) == churn
    deal_insights = {r["insight_id"] for r in rows if r["opportunity_id"]}
    assert set(ids_on(operator.get("/inbox?team=sales").text)) == deal_insights
    accounts = {r["insight_id"] for r in rows if not r["opportunity_id"]}
    assert set(ids_on(operator.get("/inbox?team=customer_success").text)) == accounts


def test_the_owner_filter_follows_the_warehouse_owner(
    operator: TestClient, components: Components
) -> None:
    owners = components.directory.owners()
    owned = rows(
        components,
        "SELECT s.owner_id, COUNT(*) AS n FROM revops_ai_insights i "
        "JOIN console_subjects s ON s.subject_key = i.subject_key "
        "WHERE s.owner_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC",
    )
    owner_id, count = owned[0]["owner_id"], owned[0]["n"]
    assert owner_id in {o for o, _ in owners}
    assert len(ids_on(operator.get(f"/inbox?owner={owner_id}").text)) == count
    assert ids_on(operator.get("/inbox?owner=nobody").text) == []


def test_a_deal_without_an_owner_is_followed_up_by_its_account_s_owner(
    components: Components,
) -> None:
    # which open deals the world analyses depends on the day; the directory holds them all
    unowned = rows(
        components,
        "SELECT s.owner_id AS subject_owner, a.owner_id AS account_owner "
        "FROM console_deals d JOIN console_subjects s ON s.opportunity_id = d.opportunity_id "
        "JOIN console_accounts a ON a.account_id = d.account_id WHERE d.owner_id IS NULL",
    )
    owned = rows(
        components,
        "SELECT COUNT(*) FROM console_deals d JOIN console_subjects s "
        "ON s.opportunity_id = d.opportunity_id WHERE s.owner_id IS DISTINCT FROM d.owner_id "
        "AND d.owner_id IS NOT NULL",
    )[0][0]
    assert unowned, "the generated warehouse has a deal without an owner"
    assert all(r["subject_owner"] == r["account_owner"] is not None for r in unowned)
    assert owned == 0  # a deal with an owner keeps it


def test_search_finds_by_title_and_by_subject_name(
    operator: TestClient, components: Components
) -> None:
    with db(components) as conn:
        title = conn.execute("SELECT title FROM revops_ai_insights LIMIT 1").fetchone()[0]
        titled = {
            r[0]
            for r in conn.execute(
                "SELECT insight_id FROM revops_ai_insights WHERE title LIKE ?", (f"%{title}%",)
            )
        }
        first, second = (
            r[0] for r in conn.execute("SELECT insight_id FROM revops_ai_insights LIMIT 2")
        )
    # "%" and "_" are searched for as themselves, not as LIKE's wildcards: as a pattern,
    # "7%_z" would match the second text too. (Written here: which texts the world's
    # insights have depends on the day they were generated.)
    later = to_db_time(utcnow() + timedelta(minutes=1))  # the search index catches up on it
    with components.insights.store.transaction() as conn:
        for insight_id, text in ((first, " usage fell 7%_z"), (second, " usage fell 7ab_z")):
            conn.execute(
                "UPDATE revops_ai_insights SET description = description || ?, updated_at = ? "
                "WHERE insight_id = ?",
                (text, later, insight_id),
            )
    assert set(ids_on(operator.get("/inbox", params={"q": title}).text)) >= titled
    assert ids_on(operator.get("/inbox", params={"q": "7%_z"}).text) == [first]
    assert ids_on(operator.get("/inbox", params={"q": "7ab_z"}).text) == [second]
    assert ids_on(operator.get("/inbox", params={"q": "a%a"}).text) == []
    assert ids_on(operator.get("/inbox", params={"q": "%"}).text) == []  # < 3 chars: ids only
    name, count = rows(
        components,
        "SELECT s.name, COUNT(*) FROM revops_ai_insights i JOIN console_subjects s "
        "ON s.subject_key = i.subject_key WHERE i.status = 'open' GROUP BY 1 LIMIT 1",
    )[0]
    assert len(ids_on(operator.get("/inbox", params={"q": name}).text)) >= count


def test_paging_walks_every_row_once(components: Components) -> None:
    inbox = Inbox(components.inbox._store, components.search, page_size=10)
    first = inbox.page(InboxFilter(status="all"))
    second = inbox.page(InboxFilter(status="all", page=2))
    assert first.total > 10 and first.pages == -(-first.total // 10)
    seen = [r.insight_id for r in first.rows + second.rows]
    assert len(seen) == len(set(seen)) == first.total
    assert InboxFilter(status="all", page=2, severity="high").query_string(page=3) == (
        "status=all&severity=high&page=3"
    )


def test_an_insight_past_its_expiry_reads_as_expired(components: Components) -> None:
    inbox = components.inbox
    row = inbox.page(InboxFilter(status="open")).rows[0]
    later = utcnow() + timedelta(days=400)
    assert row.insight_id not in {r.insight_id for r in inbox.page(InboxFilter(), later).rows}
    expired = inbox.page(InboxFilter(status="expired"), later).rows
    assert row.insight_id in {r.insight_id for r in expired}
    assert {r.status for r in expired} == {"expired"}


def test_acknowledge_from_the_list_with_a_note_lands_in_the_audit_trail(
    operator: TestClient, components: Components
) -> None:
    page = operator.get("/inbox?status=open")
    insight_id, _, version = first_row(page.text)
    response = operator.post(
        f"/insights/{insight_id}/transition",
        data={
            "csrf": csrf_of(page.text),
            "action": "ack",
            "note": "calling them today",
            "version": version,
            "back": "/inbox?status=open",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/inbox?status=open"
    after = operator.get("/inbox?status=open")
    assert "Acknowledged:" in after.text and insight_id not in ids_on(after.text)
    audit = components.insights.audit(insight_id)[-1]
    assert (audit.actor, audit.action, audit.note) == ("alice", "ack", "calling them today")
    detail = operator.get(f"/insights/{insight_id}")
    assert 'data-action="ack" data-actor="alice"' in detail.text
    assert "calling them today" in detail.text


def test_a_stale_version_is_reported_with_the_new_state_and_not_applied(
    operator: TestClient, components: Components
) -> None:
    other = sign_in(TestClient(operator.app, base_url=BASE_URL), "tok-olga")
    page_a, page_b = operator.get("/inbox?status=open"), other.get("/inbox?status=open")
    insight_id, _, version = first_row(page_a.text)
    assert f'data-insight-id="{insight_id}" data-status="open" data-version="{version}"' in (
        page_b.text
    )
    form = {"action": "ack", "version": version, "back": "/inbox"}
    operator.post(f"/insights/{insight_id}/transition", data={**form, "csrf": csrf_of(page_a.text)})
    response = other.post(
        f"/insights/{insight_id}/transition",
        data={**form, "action": "dismiss", "csrf": csrf_of(page_b.text)},
    )
    assert response.status_code == 200
    assert 'data-flash="conflict"' in response.text
    assert "Changed by someone else" in response.text
    assert f"is now acknowledged (version {int(version) + 1}" in response.text
    assert "ack by alice" in response.text
    current = components.insights.get(insight_id)
    assert current.status.value == "acknowledged"  # olga's dismiss was not applied
    assert [a.actor for a in components.insights.audit(insight_id)][-1] == "alice"


def test_a_change_the_lifecycle_forbids_is_explained(
    operator: TestClient, components: Components
) -> None:
    page = operator.get("/inbox?status=open")
    insight_id, _, version = first_row(page.text)
    response = operator.post(
        f"/insights/{insight_id}/transition",
        data={"csrf": csrf_of(page.text), "action": "resolve", "version": version},
    )
    assert "cannot resolve" in response.text and 'data-flash="error"' in response.text
    assert components.insights.get(insight_id).status.value == "open"


def test_the_list_offers_only_the_changes_the_status_allows(operator: TestClient) -> None:
    page = operator.get("/inbox?status=open").text
    row = page[page.index('data-status="open"') :]
    row = row[: row.index("</tr>")]
    actions = re.findall(r'data-action="(\w+)"', row)
    assert actions == ["ack", "start", "dismiss"]  # resolve needs acknowledged first
