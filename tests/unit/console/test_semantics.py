"""Semantic HTML on every page: one h1 and no skipped heading level, a label for every
control, scoped table headers, a skip link to the main content, no positive tabindex, named
charts and buttons; and text from the stores is always escaped."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import pairwise

import pytest
from starlette.testclient import TestClient

from services.console.pages import Components
from tests.unit.console.conftest import World

CONTROLS = {"input", "select", "textarea"}
NOT_LABELLED = {"hidden", "submit", "button"}


@dataclass
class Page(HTMLParser):
    headings: list[int] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    label_for: set[str] = field(default_factory=set)
    controls: list[dict[str, str | None]] = field(default_factory=list)
    tables: list[dict[str, int]] = field(default_factory=list)
    first_link: str | None = None
    lang: str | None = None
    svgs: list[dict[str, str | None]] = field(default_factory=list)
    buttons: list[list[str]] = field(default_factory=list)
    tabindex: list[str] = field(default_factory=list)
    in_label: int = 0
    wrapped: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if a.get("tabindex") not in (None, "0", "-1"):
            self.tabindex.append(f"{tag} {a.get('tabindex')}")
        if tag == "html":
            self.lang = a.get("lang")
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self.headings.append(int(tag[1]))
        elif tag == "label":
            self.in_label += 1
            if a.get("for"):
                self.label_for.add(a["for"] or "")
        elif tag in CONTROLS and a.get("type") not in NOT_LABELLED:
            if self.in_label:
                self.wrapped.add(len(self.controls))
            self.controls.append(a)
        elif tag == "table":
            self.tables.append({"th": 0, "scoped": 0})
        elif tag == "th" and self.tables:
            self.tables[-1]["th"] += 1
            self.tables[-1]["scoped"] += a.get("scope") in ("col", "row")
        elif tag == "a" and self.first_link is None:
            self.first_link = a.get("href")
        elif tag == "svg":
            self.svgs.append(a)
        elif tag == "button":
            self.buttons.append([a.get("aria-label") or ""])

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.in_label -= 1

    def handle_data(self, data: str) -> None:
        if self.buttons and data.strip():
            self.buttons[-1].append(data.strip())


def check(html: str) -> Page:
    page = Page()
    page.feed(html)
    assert page.lang == "en"
    assert page.headings.count(1) == 1, "one h1"
    assert all(b - a <= 1 for a, b in pairwise(page.headings)), page.headings
    assert page.first_link == "#main" and "main" in page.ids, "a skip link comes first"
    for n, control in enumerate(page.controls):
        named = control.get("id") in page.label_for or control.get("aria-label")
        assert named or n in page.wrapped, f"control without a label: {control}"
    for table in page.tables:
        assert table["th"] > 0 and table["scoped"] == table["th"], "table headers with scope"
    for svg in page.svgs:
        assert svg.get("role") == "img" and svg.get("aria-labelledby")
        assert all(part in page.ids for part in (svg.get("aria-labelledby") or "").split())
    assert all(any(text for text in b) for b in page.buttons), "every button has a name"
    assert page.tabindex == []
    return page


@pytest.fixture
def paths(world: World, operator: TestClient) -> list[str]:
    inbox = operator.get("/inbox").text
    insight_id = inbox.split('data-insight-id="', 1)[1].split('"', 1)[0]
    return [
        "/inbox",
        "/inbox?status=all&severity=high",
        f"/insights/{insight_id}",
        "/overview",
        "/deals",
        "/accounts",
        f"/deals/{world.deals[0][1]}",
        f"/accounts/{world.accounts[0]}",
        "/operations",
        f"/operations/flows/deal-{world.deals[0][1]}-0",
        "/nowhere",
    ]


def test_every_page_is_semantic_html(operator: TestClient, paths: list[str]) -> None:
    for path in paths:
        response = operator.get(path)
        assert response.headers["content-type"].startswith("text/html")
        check(response.text)


def test_the_sign_in_page_is_semantic_html(client: TestClient) -> None:
    page = check(client.get("/signin").text)
    assert "token" in page.label_for


def test_text_from_the_stores_is_escaped(operator: TestClient, components: Components) -> None:
    with components.insights.store.transaction() as conn:
        (insight_id,) = conn.execute("SELECT insight_id FROM revops_ai_insights LIMIT 1").fetchone()
        conn.execute(
            "UPDATE revops_ai_insights SET title = ?, description = ? WHERE insight_id = ?",
            ('<script>alert("x")</script>', "<img src=x onerror=alert(1)>", insight_id),
        )
    for path in ("/inbox?status=all", f"/insights/{insight_id}"):
        text = operator.get(path).text
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
