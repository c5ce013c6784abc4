"""The inbox: insights by severity, filtered by status, severity, category, owner, team and
a search, one page at a time (LIMIT/OFFSET over an indexed order), counted in SQL.

"Status" is the effective status, as `revops insights list` reads it: an open or
acknowledged insight past its `expires_at` counts as expired even before the housekeeping
timer marks it so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from contracts.common import utcnow
from services.common.stores.database import Database, Dialect
from services.console.search import INSIGHT, SearchIndex, search_clause
from services.execution_agent.insights import (
    ACTIVE_STATUSES,
    EXPIRABLE_STATUSES,
    TRANSITIONS,
    InsightStatus,
)
from services.execution_agent.store import from_db_time, to_db_time

SEVERITIES = ("critical", "high", "medium", "low")
SEARCH_CATCH_UP = 2_000  # insights a search indexes first; the background timer does the rest
ACTIVE = "active"  # the default view: open, acknowledged or in progress, not expired
ALL = "all"
STATUS_CHOICES = (ACTIVE, *(s.value for s in InsightStatus), ALL)
# Actions a person takes from the console (expiry is the housekeeping timer's).
USER_ACTIONS = ("ack", "start", "resolve", "dismiss")
ACTION_LABELS = {"ack": "Acknowledge", "start": "Start", "resolve": "Resolve", "dismiss": "Dismiss"}
DONE_LABELS = {
    "ack": "Acknowledged",
    "start": "Started",
    "resolve": "Resolved",
    "dismiss": "Dismissed",
}


@dataclass(frozen=True)
class InboxFilter:
    status: str = ACTIVE
    severity: str | None = None
    category: str | None = None
    owner: str | None = None
    team: str | None = None
    search: str | None = None
    account_id: str | None = None
    opportunity_id: str | None = None
    page: int = 1

    @classmethod
    def from_query(cls, params: Any) -> InboxFilter:
        """From a request's query string; unknown values are ignored, never an error."""

        def pick(name: str, allowed: tuple[str, ...] | None = None) -> str | None:
            value = (params.get(name) or "").strip()
            if not value or (allowed is not None and value not in allowed):
                return None
            return value[:200]

        page = params.get("page") or "1"
        return cls(
            status=pick("status", STATUS_CHOICES) or ACTIVE,
            severity=pick("severity", SEVERITIES),
            category=pick("category"),
            owner=pick("owner"),
            team=pick("team"),
            search=pick("q"),
            account_id=pick("account"),
            opportunity_id=pick("opportunity"),
            page=max(1, int(page)) if page.isdigit() else 1,
        )

    def query_string(self, **changes: Any) -> str:
        """This filter as a query string, with `changes` applied (for paging links)."""
        values = {
            "status": self.status,
            "severity": self.severity,
            "category": self.category,
            "owner": self.owner,
            "team": self.team,
            "q": self.search,
            "account": self.account_id,
            "opportunity": self.opportunity_id,
            "page": self.page,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in (None, "", 1, ACTIVE)})


@dataclass(frozen=True)
class InboxRow:
    insight_id: str
    title: str
    description: str
    priority: str
    status: str  # effective
    category: str
    type: str
    account_id: str
    opportunity_id: str | None
    subject_name: str | None
    owner_name: str | None
    team: str | None
    updated_at: datetime
    version: int

    @property
    def actions(self) -> list[str]:
        """The changes allowed from this status, in lifecycle order."""
        return [a for a in USER_ACTIONS if self.status in TRANSITIONS[a].sources]


@dataclass
class InboxPage:
    rows: list[InboxRow]
    total: int
    page: int
    page_size: int
    counts_by_severity: dict[str, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _where(f: InboxFilter, now: str, dialect: Dialect) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    expirable = ", ".join("?" for _ in EXPIRABLE_STATUSES)
    not_expired = "(i.expires_at IS NULL OR i.expires_at > ?)"
    if f.status == ACTIVE:
        active = ", ".join("?" for _ in ACTIVE_STATUSES)
        clauses.append(
            f"i.status IN ({active}) AND (i.status NOT IN ({expirable}) OR {not_expired})"
        )
        params += [*ACTIVE_STATUSES, *EXPIRABLE_STATUSES, now]
    elif f.status == InsightStatus.EXPIRED:
        clauses.append(
            f"(i.status = 'expired' OR (i.status IN ({expirable}) AND i.expires_at <= ?))"
        )
        params += [*EXPIRABLE_STATUSES, now]
    elif f.status != ALL:
        clauses.append("i.status = ?")
        params.append(f.status)
        if f.status in EXPIRABLE_STATUSES:
            clauses.append(not_expired)
            params.append(now)
    if f.severity:
        clauses.append("i.priority = ?")
        params.append(f.severity)
    if f.category:
        clauses.append("i.category = ?")
        params.append(f.category)
    # Owner, team and subject name live in the directory: each is a set of subject keys, so
    # the insights are still read off their own indexes (no join over every row).
    if f.owner:
        clauses.append(f"i.subject_key IN ({_SUBJECTS} WHERE owner_id = ?)")
        params.append(f.owner)
    if f.team:
        clauses.append(f"i.subject_key IN ({_SUBJECTS} WHERE team = ?)")
        params.append(f.team)
    if f.account_id:
        clauses.append("i.account_id = ?")
        params.append(f.account_id)
    if f.opportunity_id:
        clauses.append("i.opportunity_id = ?")
        params.append(f.opportunity_id)
    if f.search:  # title, description, subject name and ids
        clause, values = search_clause(
            dialect, INSIGHT, f.search, "i.insight_id", "i.account_id", "i.opportunity_id"
        )
        clauses.append(clause)
        params += values
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


_SUBJECTS = "SELECT subject_key FROM console_subjects"


def _rank_order(where: str, dialect: Dialect) -> str:
    """The filter with its status terms kept off the status indexes (`Dialect.unindexed`):
    the page is then read off ix_insights_rank in order and stops at the page's end, instead
    of sorting every insight of the status."""
    status = dialect.unindexed("i.status")
    return where.replace("i.status IN (", f"{status} IN (").replace("i.status = ?", f"{status} = ?")


_FROM = " FROM revops_ai_insights i"
_ORDER = " ORDER BY i.impact_score DESC, i.updated_at DESC, i.insight_id"


class Inbox:
    def __init__(self, store: Database, search: SearchIndex, page_size: int = 50) -> None:
        self._store = store
        self._search = search
        self.page_size = page_size

    def page(self, f: InboxFilter, now: datetime | None = None) -> InboxPage:
        now_text = to_db_time(now or utcnow()) or ""
        if f.search:
            self._search.catch_up(limit=SEARCH_CATCH_UP)  # what changed since the last tick
        where, params = _where(f, now_text, self._store.dialect)
        ranked = _rank_order(where, self._store.dialect)
        # Severity first (impact_score is the severity's weight), then the freshest: the
        # page's rows come off ix_insights_rank; only they are joined with the directory.
        sql = (
            "SELECT i.insight_id, i.title, i.description, i.priority, i.status, i.category, "
            "i.type, i.account_id, i.opportunity_id, i.updated_at, i.version, i.expires_at, "
            "s.name AS subject_name, s.team, p.name AS owner_name FROM (SELECT i.*"
            f"{_FROM}{ranked}{_ORDER} LIMIT ? OFFSET ?) i "
            "LEFT JOIN console_subjects s ON s.subject_key = i.subject_key "
            f"LEFT JOIN console_people p ON p.owner_id = s.owner_id{_ORDER}"
        )
        offset = (f.page - 1) * self.page_size
        # A narrow filter (an owner's subjects, search hits, one account) drives the count
        # from its own small set; otherwise the covering status index counts fastest.
        narrow = bool(f.owner or f.search or f.account_id or f.opportunity_id)
        counted = ranked if narrow else where
        with self._store.reader() as conn:
            rows = conn.execute(sql, (*params, self.page_size, offset)).fetchall()
            counts = {
                r["priority"]: r["n"]
                for r in conn.execute(
                    f"SELECT i.priority, COUNT(*) AS n{_FROM}{counted} GROUP BY i.priority", params
                )
            }
        return InboxPage(
            rows=[_row(r, now_text) for r in rows],
            total=sum(counts.values()),
            page=f.page,
            page_size=self.page_size,
            counts_by_severity={s: counts.get(s, 0) for s in SEVERITIES},
        )

    def categories(self) -> list[str]:
        with self._store.reader() as conn:
            return [
                r[0]
                for r in conn.execute("SELECT DISTINCT category FROM revops_ai_insights ORDER BY 1")
            ]


def effective_status(status: str, expires_at: str | None, now_text: str) -> str:
    if status in EXPIRABLE_STATUSES and expires_at is not None and expires_at <= now_text:
        return InsightStatus.EXPIRED.value
    return status


def _row(r: Any, now_text: str) -> InboxRow:
    return InboxRow(
        insight_id=r["insight_id"],
        title=r["title"],
        description=r["description"],
        priority=r["priority"],
        status=effective_status(r["status"], r["expires_at"], now_text),
        category=r["category"],
        type=r["type"],
        account_id=r["account_id"],
        opportunity_id=r["opportunity_id"],
        subject_name=r["subject_name"],
        owner_name=r["owner_name"],
        team=r["team"],
        updated_at=from_db_time(r["updated_at"]) or utcnow(),
        version=r["version"],
    )
