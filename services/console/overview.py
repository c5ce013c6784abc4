"""The overview: open deals by score band and stage (per owner and team), accounts by health
band, what changed since yesterday, and the pipeline at risk in currency.

The fleet figures join every open deal with its newest analysis (100,000 deals: about a
second of SQL on a busy 2-core box), so they are computed off the request path: by a timer
(`REVOPS_CONSOLE_FIGURES_REFRESH_S`, 60 s) into one snapshot of cells (stage x owner x band
x at-risk), which every filter of the page then reads; the page says how old they are. What
changed since yesterday is read live (indexed by time).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from contracts.common import PRIORITY_RANK, utcnow
from services.common.stores.database import Database, Dialect
from services.execution_agent.insights import ACTIVE_STATUSES
from services.execution_agent.store import to_db_time

log = structlog.get_logger("console.overview")

# Deal-quality bands (services/decision_agent/rules/deal_quality.yaml), best first, and the
# score under which an open deal counts as pipeline at risk (bands Weak and Poor).
DEAL_BANDS = ("Strong", "Good", "Fair", "Weak", "Poor")
NOT_ANALYSED = "not analysed"
AT_RISK_BELOW = 50
# An open critical or high risk insight also puts a deal's amount at risk.
AT_RISK_PRIORITIES = ("critical", "high")
CHANGES_SHOWN = 20


@dataclass(frozen=True)
class OverviewFilter:
    owner: str | None = None
    team: str | None = None


@dataclass(frozen=True)
class FleetFigures:
    """One snapshot of the expensive aggregates."""

    cells: list[dict[str, Any]]  # stage, owner_id, owner, band, at_risk, n, amount
    health_bands: list[dict[str, Any]]  # band, accounts
    accounts_total: int
    computed_at: datetime
    took_ms: float

    def deal_cells(self, f: OverviewFilter, deal_team: str) -> list[dict[str, Any]]:
        if f.team and f.team != deal_team:
            return []  # deals are followed up by the deal team only
        return [c for c in self.cells if not f.owner or c["owner_id"] == f.owner]


@dataclass
class Overview:
    bands: list[str]
    figures: FleetFigures
    by_stage: list[dict[str, Any]]  # label, <band>: count, total, amount
    by_owner: list[dict[str, Any]]  # label, team, <band>: count, total, amount
    open_deals: int
    pipeline_total: float
    pipeline_at_risk: float
    deals_at_risk: int
    since: datetime
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    change_counts: dict[str, int] = field(default_factory=dict)

    @property
    def accounts_analysed(self) -> int:
        return sum(r["accounts"] for r in self.figures.health_bands)


class OverviewQueries:
    def __init__(self, store: Database, deal_team: str) -> None:
        self._store = store
        self.deal_team = deal_team
        self._figures: FleetFigures | None = None
        self._lock = threading.Lock()

    # -- the snapshot ------------------------------------------------------------------------
    def refresh(self) -> FleetFigures:
        started = time.perf_counter()
        now = utcnow()
        dialect = self._store.dialect
        at_risk, at_risk_params = _at_risk(dialect, to_db_time(now) or "")
        with self._store.reader() as conn:
            cells = [
                {**dict(r), "at_risk": bool(r["at_risk"])}
                for r in conn.execute(
                    f"WITH at_risk AS MATERIALIZED ({at_risk}) "
                    "SELECT d.stage, d.owner_id, COALESCE(p.name, d.owner_id, '(no owner)') "
                    f"AS owner, COALESCE(l.headline_band, '{NOT_ANALYSED}') AS band, "
                    f"(l.headline_score < {AT_RISK_BELOW} OR r.subject_key IS NOT NULL) "
                    "AS at_risk, COUNT(*) AS n, COALESCE(SUM(d.amount), 0) AS amount "
                    # A scan beats 100,000 index probes.
                    f"FROM {dialect.not_indexed('console_deals d')} "
                    "LEFT JOIN console_people p ON p.owner_id = d.owner_id "
                    "LEFT JOIN revops_ai_latest_analysis l "
                    "ON l.opportunity_id = d.opportunity_id AND l.analysis_type = 'deal_quality' "
                    "LEFT JOIN at_risk r "
                    "ON r.subject_key = d.account_id || '|' || d.opportunity_id "
                    "WHERE d.is_open = 1 GROUP BY 1, 2, 3, 4, 5",
                    at_risk_params,
                )
            ]
            health = [
                dict(r)
                for r in conn.execute(
                    "SELECT COALESCE(band, 'unknown') AS band, COUNT(*) AS accounts "
                    "FROM revops_ai_health GROUP BY 1 ORDER BY MIN(score)"
                )
            ]
            (accounts_total,) = conn.execute("SELECT COUNT(*) FROM console_accounts").fetchone()
        figures = FleetFigures(
            cells, health, accounts_total, now, round((time.perf_counter() - started) * 1000, 1)
        )
        with self._lock:
            self._figures = figures
        log.debug("overview_figures", took_ms=figures.took_ms, cells=len(cells))
        return figures

    def figures(self) -> FleetFigures:
        """The latest snapshot (computed now if there is none yet)."""
        with self._lock:
            figures = self._figures
        return figures if figures is not None else self.refresh()

    def count_deals(self, stage: str | None, band: str | None, owner: str | None) -> int:
        """Open deals of a stage, band and owner, from the snapshot."""
        return sum(
            c["n"]
            for c in self.figures().cells
            if (not stage or c["stage"] == stage)
            and (not band or c["band"] == band)
            and (not owner or c["owner_id"] == owner)
        )

    # -- the page ----------------------------------------------------------------------------
    def build(self, f: OverviewFilter, now: datetime | None = None) -> Overview:
        now = now or utcnow()
        since = now - timedelta(days=1)
        figures = self.figures()
        cells = figures.deal_cells(f, self.deal_team)
        by_owner = _table(cells, "owner")
        for row in by_owner:
            row["team"] = self.deal_team
        changes, counts = self._changes(to_db_time(since) or "")
        return Overview(
            bands=[*DEAL_BANDS, NOT_ANALYSED],
            figures=figures,
            by_stage=_table(cells, "stage"),
            by_owner=by_owner,
            open_deals=sum(c["n"] for c in cells),
            pipeline_total=sum(c["amount"] for c in cells),
            pipeline_at_risk=sum(c["amount"] for c in cells if c["at_risk"]),
            deals_at_risk=sum(c["n"] for c in cells if c["at_risk"]),
            since=since,
            changes=changes,
            change_counts=counts,
        )

    def _changes(self, since: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
        """New, escalated and resolved insights since `since` (each read off a time index)."""
        columns = "insight_id, title, priority, account_id, opportunity_id"
        priority = self._store.dialect.json_text("a.changes", "priority")
        priority_from = self._store.dialect.json_text("a.changes", "priority", "from")
        priority_to = self._store.dialect.json_text("a.changes", "priority", "to")
        with self._store.reader() as conn:
            new = _rows(
                conn,
                f"SELECT {columns}, created_at AS at FROM revops_ai_insights "
                "WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?",
                (since, CHANGES_SHOWN),
            )
            resolved = _rows(
                conn,
                f"SELECT {columns}, resolved_at AS at FROM revops_ai_insights "
                "WHERE resolved_at >= ? ORDER BY resolved_at DESC LIMIT ?",
                (since, CHANGES_SHOWN),
            )
            reruns = conn.execute(
                f"SELECT a.insight_id, a.at, {priority_from} AS was, {priority_to} AS priority, "
                "i.title, i.account_id, i.opportunity_id FROM revops_ai_insight_audit a "
                "JOIN revops_ai_insights i ON i.insight_id = a.insight_id "
                "WHERE a.at >= ? AND a.action = 'rerun' "
                f"AND {priority} IS NOT NULL ORDER BY a.at DESC",
                (since,),
            ).fetchall()
            counts = {
                "new": _count(conn, "created_at", since),
                "resolved": _count(conn, "resolved_at", since),
            }
        escalated = [
            dict(r)
            for r in reruns
            if PRIORITY_RANK.get(r["priority"], len(PRIORITY_RANK))
            < PRIORITY_RANK.get(r["was"], len(PRIORITY_RANK))
        ]
        counts["escalated"] = len(escalated)
        return {"new": new, "escalated": escalated[:CHANGES_SHOWN], "resolved": resolved}, counts


def _at_risk(dialect: Dialect, now_text: str) -> tuple[str, tuple[str, ...]]:
    """SQL (and its values) for the subjects of deals that have an open critical or high risk
    insight; materialized once per refresh, then looked up per deal."""
    statuses = ", ".join("?" for _ in ACTIVE_STATUSES)
    priorities = ", ".join("?" for _ in AT_RISK_PRIORITIES)
    return (
        "SELECT DISTINCT subject_key FROM revops_ai_insights "
        f"WHERE status IN ({statuses}) AND priority IN ({priorities}) "
        f"AND opportunity_id IS NOT NULL AND {dialect.json_text('payload', 'flag_type')} = 'risk' "
        "AND (expires_at IS NULL OR expires_at > ?)",
        (*ACTIVE_STATUSES, *AT_RISK_PRIORITIES, now_text),
    )


def _table(cells: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows by `key` (stage or owner): deals per band, deals and amount in all; biggest first."""
    table: dict[str, dict[str, Any]] = {}
    for cell in cells:
        entry = table.setdefault(cell[key], {"label": cell[key], "total": 0, "amount": 0.0})
        entry[cell["band"]] = entry.get(cell["band"], 0) + cell["n"]
        entry["total"] += cell["n"]
        entry["amount"] += cell["amount"]
    return sorted(table.values(), key=lambda e: (-e["total"], e["label"]))


def _rows(conn: Any, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sql, params)]


def _count(conn: Any, column: str, since: str) -> int:
    return int(
        conn.execute(
            f"SELECT COUNT(*) FROM revops_ai_insights WHERE {column} >= ?", (since,)
        ).fetchone()[0]
    )
