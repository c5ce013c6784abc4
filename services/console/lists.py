"""The deals and accounts lists: the directory joined with the newest analysis (deals) or the
current health record (accounts), filtered and paged in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from services.common.stores.database import Database
from services.console.overview import NOT_ANALYSED, OverviewQueries
from services.console.search import ACCOUNT, DEAL, search_clause


@dataclass(frozen=True)
class ListFilter:
    band: str | None = None
    stage: str | None = None
    owner: str | None = None
    search: str | None = None
    page: int = 1

    @classmethod
    def from_query(cls, params: Any) -> ListFilter:
        def pick(name: str) -> str | None:
            value = (params.get(name) or "").strip()
            return value[:200] or None

        page = params.get("page") or "1"
        return cls(
            band=pick("band"),
            stage=pick("stage"),
            owner=pick("owner"),
            search=pick("q"),
            page=max(1, int(page)) if page.isdigit() else 1,
        )

    def query_string(self, **changes: Any) -> str:
        values = {
            "band": self.band,
            "stage": self.stage,
            "owner": self.owner,
            "q": self.search,
            "page": self.page,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in (None, "", 1)})


@dataclass
class ListPage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


class Lists:
    def __init__(self, store: Database, overview: OverviewQueries, page_size: int = 50) -> None:
        self._store = store
        self._overview = overview
        self.page_size = page_size

    def deals(self, f: ListFilter) -> ListPage:
        clauses, params = ["d.is_open = 1"], []
        if f.stage:
            clauses.append("d.stage = ?")
            params.append(f.stage)
        if f.band:
            clauses.append(f"COALESCE(l.headline_band, '{NOT_ANALYSED}') = ?")
            params.append(f.band)
        if f.owner:
            clauses.append("d.owner_id = ?")
            params.append(f.owner)
        if f.search:
            clause, values = search_clause(self._store.dialect, DEAL, f.search, "d.opportunity_id")
            clauses.append(clause)
            params += values
        latest = (
            "LEFT JOIN revops_ai_latest_analysis l ON l.opportunity_id = d.opportunity_id "
            "AND l.analysis_type = 'deal_quality'"
        )
        where = " WHERE " + " AND ".join(clauses)
        order = " ORDER BY d.amount DESC NULLS LAST, d.opportunity_id"
        # The page's deals first (off ix_console_deals_amount), then their names and owners.
        total = None
        if f.band and not f.search:  # counting by band joins every deal: the snapshot has it
            total = self._overview.count_deals(f.stage, f.band, f.owner)
        return self._page(
            "SELECT d.opportunity_id, d.name, d.account_id, a.name AS account_name, d.stage, "
            "d.amount, d.close_date, p.name AS owner_name, d.headline_score, d.headline_band "
            "FROM (SELECT d.*, l.headline_score, l.headline_band FROM console_deals d "
            f"{latest}{where}{order} LIMIT ? OFFSET ?) d "
            "LEFT JOIN console_accounts a ON a.account_id = d.account_id "
            f"LEFT JOIN console_people p ON p.owner_id = d.owner_id{order}",
            f"SELECT COUNT(*) FROM console_deals d {latest if f.band else ''}{where}",
            params,
            f.page,
            total,
        )

    def accounts(self, f: ListFilter) -> ListPage:
        clauses, params = ["1 = 1"], []
        if f.band:
            clauses.append("COALESCE(h.band, 'not analysed') = ?")
            params.append(f.band)
        if f.owner:
            clauses.append("a.owner_id = ?")
            params.append(f.owner)
        if f.search:
            clause, values = search_clause(self._store.dialect, ACCOUNT, f.search, "a.account_id")
            clauses.append(clause)
            params += values
        joins = (
            " FROM console_accounts a LEFT JOIN revops_ai_health h "
            "ON h.account_id = a.account_id LEFT JOIN console_people p ON p.owner_id = a.owner_id "
            "WHERE " + " AND ".join(clauses)
        )
        return self._page(
            "SELECT a.account_id, a.name, a.customer_class, a.industry, p.name AS owner_name, "
            "h.score, h.band, h.churn_risk, h.as_of" + joins + " ORDER BY a.account_id "
            "LIMIT ? OFFSET ?",
            "SELECT COUNT(*)" + joins,
            params,
            f.page,
        )

    def stages(self) -> list[str]:
        with self._store.reader() as conn:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT stage FROM console_deals WHERE is_open = 1 ORDER BY 1"
                )
            ]

    def _page(
        self, sql: str, count_sql: str, params: list[Any], page: int, total: int | None = None
    ) -> ListPage:
        """`sql` holds `LIMIT ? OFFSET ?` after the filter's parameters; `total`, when known,
        saves the count."""
        with self._store.reader() as conn:
            if total is None:
                total = int(conn.execute(count_sql, params).fetchone()[0])
            rows = conn.execute(
                sql, (*params, self.page_size, (page - 1) * self.page_size)
            ).fetchall()
        return ListPage([dict(r) for r in rows], total, page, self.page_size)
