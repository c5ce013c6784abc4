"""The overview: open deals by score band and stage (per owner and team), accounts by health
band, what changed since yesterday, and the pipeline at risk in currency. Every figure is an
aggregate computed in SQL over the directory and the execution agent's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contracts.common import utcnow
from services.console.db import ConsoleStore
from services.execution_agent.insights import ACTIVE_STATUSES
from services.execution_agent.store import to_db_time

# Deal-quality bands (services/decision_agent/rules/deal_quality.yaml), best first, and the
# score under which an open deal counts as pipeline at risk (bands Weak and Poor).
DEAL_BANDS = ("Strong", "Good", "Fair", "Weak", "Poor")
NOT_ANALYSED = "not analysed"
AT_RISK_BELOW = 50
# An open critical or high risk insight also puts a deal's amount at risk.
AT_RISK_PRIORITIES = ("critical", "high")
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}

_LATEST_DEAL = (
    "LEFT JOIN ea.revops_ai_latest_analysis l ON l.opportunity_id = d.opportunity_id "
    "AND l.analysis_type = 'deal_quality'"
)


@dataclass(frozen=True)
class OverviewFilter:
    owner: str | None = None
    team: str | None = None


@dataclass
class Overview:
    bands: list[str]
    by_stage: list[dict[str, Any]]  # stage, <band>: count, total, amount
    by_owner: list[dict[str, Any]]  # owner, team, <band>: count, total, amount, at_risk
    health_bands: list[dict[str, Any]]  # band, accounts
    accounts_total: int
    accounts_analysed: int
    new: list[dict[str, Any]]
    escalated: list[dict[str, Any]]
    resolved: list[dict[str, Any]]
    since: datetime
    pipeline_total: float
    pipeline_at_risk: float
    deals_at_risk: int
    open_deals: int


class OverviewQueries:
    def __init__(self, store: ConsoleStore, deal_team: str) -> None:
        self._store = store
        self._deal_team = deal_team

    def build(self, f: OverviewFilter, now: datetime | None = None) -> Overview:
        now = now or utcnow()
        since = now - timedelta(days=1)
        deal_where, deal_params = self._deal_filter(f)
        with self._store.reader() as conn:
            self._at_risk_subjects(conn, to_db_time(now) or "")
            by_stage = self._grouped(conn, "d.stage", deal_where, deal_params)
            by_owner = self._grouped(
                conn, "COALESCE(p.name, d.owner_id, '(no owner)')", deal_where, deal_params
            )
            pipeline = self._pipeline(conn, deal_where, deal_params)
            health = conn.execute(
                "SELECT COALESCE(band, 'unknown') AS band, COUNT(*) AS accounts "
                "FROM ea.revops_ai_health GROUP BY 1 ORDER BY MIN(score)"
            ).fetchall()
            accounts_total = conn.execute("SELECT COUNT(*) FROM console_accounts").fetchone()[0]
            since_text = to_db_time(since)
            new = _rows(
                conn,
                "SELECT insight_id, title, priority, account_id, opportunity_id, created_at AS at "
                "FROM ea.revops_ai_insights WHERE created_at >= ? "
                "ORDER BY impact_score DESC, created_at DESC LIMIT 20",
                (since_text,),
            )
            resolved = _rows(
                conn,
                "SELECT insight_id, title, priority, account_id, opportunity_id, "
                "resolved_at AS at FROM ea.revops_ai_insights WHERE resolved_at >= ? "
                "ORDER BY resolved_at DESC LIMIT 20",
                (since_text,),
            )
            escalated = self._escalated(conn, since_text or "")
            counts = {
                "new": _count(conn, "created_at", since_text),
                "resolved": _count(conn, "resolved_at", since_text),
            }
        for row in by_owner:
            row["team"] = self._deal_team
        return Overview(
            bands=[*DEAL_BANDS, NOT_ANALYSED],
            by_stage=by_stage,
            by_owner=by_owner,
            health_bands=[dict(r) for r in health],
            accounts_total=accounts_total,
            accounts_analysed=sum(r["accounts"] for r in health),
            new=_with_total(new, counts["new"]),
            escalated=escalated,
            resolved=_with_total(resolved, counts["resolved"]),
            since=since,
            **pipeline,
        )

    def _deal_filter(self, f: OverviewFilter) -> tuple[str, list[Any]]:
        clauses, params = ["d.is_open = 1"], []
        if f.owner:
            clauses.append("d.owner_id = ?")
            params.append(f.owner)
        if f.team and f.team != self._deal_team:
            clauses.append("0")  # deals are followed up by the deal team only
        return " WHERE " + " AND ".join(clauses), params

    @staticmethod
    def _grouped(conn: Any, key: str, where: str, params: list[Any]) -> list[dict[str, Any]]:
        band = f"COALESCE(l.headline_band, '{NOT_ANALYSED}')"
        rows = conn.execute(
            f"SELECT {key} AS label, {band} AS band, COUNT(*) AS n, "
            "COALESCE(SUM(d.amount), 0) AS amount FROM console_deals d "
            f"LEFT JOIN console_people p ON p.owner_id = d.owner_id {_LATEST_DEAL}"
            f"{where} GROUP BY 1, 2",
            params,
        ).fetchall()
        table: dict[str, dict[str, Any]] = {}
        for r in rows:
            entry = table.setdefault(r["label"], {"label": r["label"], "total": 0, "amount": 0.0})
            entry[r["band"]] = entry.get(r["band"], 0) + r["n"]
            entry["total"] += r["n"]
            entry["amount"] += r["amount"]
        return sorted(table.values(), key=lambda e: (-e["total"], e["label"]))

    @staticmethod
    def _at_risk_subjects(conn: Any, now_text: str) -> None:
        """Fills a temporary table with the subjects that have an open critical/high risk
        insight (one indexed pass over the active insights)."""
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS at_risk (subject_key TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM at_risk")
        statuses = ", ".join("?" for _ in ACTIVE_STATUSES)
        priorities = ", ".join("?" for _ in AT_RISK_PRIORITIES)
        conn.execute(
            "INSERT OR IGNORE INTO at_risk SELECT subject_key FROM ea.revops_ai_insights "
            f"WHERE status IN ({statuses}) AND priority IN ({priorities}) "
            "AND opportunity_id IS NOT NULL AND json_extract(payload, '$.flag_type') = 'risk' "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (*ACTIVE_STATUSES, *AT_RISK_PRIORITIES, now_text),
        )

    @staticmethod
    def _pipeline(conn: Any, where: str, params: list[Any]) -> dict[str, Any]:
        row = conn.execute(
            "SELECT COUNT(*) AS open_deals, COALESCE(SUM(d.amount), 0) AS total, "
            f"COALESCE(SUM(CASE WHEN l.headline_score < {AT_RISK_BELOW} OR r.subject_key "
            "IS NOT NULL THEN d.amount END), 0) AS at_risk, "
            f"SUM(CASE WHEN l.headline_score < {AT_RISK_BELOW} OR r.subject_key IS NOT NULL "
            "THEN 1 ELSE 0 END) AS deals_at_risk "
            f"FROM console_deals d {_LATEST_DEAL} "
            "LEFT JOIN temp.at_risk r ON r.subject_key = d.account_id || '|' || d.opportunity_id"
            f"{where}",
            params,
        ).fetchone()
        return {
            "open_deals": row["open_deals"],
            "pipeline_total": float(row["total"]),
            "pipeline_at_risk": float(row["at_risk"]),
            "deals_at_risk": int(row["deals_at_risk"] or 0),
        }

    @staticmethod
    def _escalated(conn: Any, since_text: str) -> list[dict[str, Any]]:
        """Insights whose priority a re-run raised since `since_text`."""
        rows = conn.execute(
            "SELECT a.insight_id, a.at, json_extract(a.changes, '$.priority.from') AS was, "
            "json_extract(a.changes, '$.priority.to') AS now_priority, i.title, i.account_id, "
            "i.opportunity_id FROM ea.revops_ai_insight_audit a "
            "JOIN ea.revops_ai_insights i ON i.insight_id = a.insight_id "
            "WHERE a.at >= ? AND a.action = 'rerun' "
            "AND json_extract(a.changes, '$.priority') IS NOT NULL ORDER BY a.at DESC",
            (since_text,),
        ).fetchall()
        found = [
            {**dict(r), "priority": r["now_priority"]}
            for r in rows
            if PRIORITY_RANK.get(r["now_priority"], 0) > PRIORITY_RANK.get(r["was"], 0)
        ]
        return _with_total(found[:20], len(found))


def _rows(conn: Any, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sql, params)]


def _count(conn: Any, column: str, since_text: str | None) -> int:
    return int(
        conn.execute(
            f"SELECT COUNT(*) FROM ea.revops_ai_insights WHERE {column} >= ?", (since_text,)
        ).fetchone()[0]
    )


def _with_total(rows: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    """The first rows, each knowing how many there are in all (for "20 of 135")."""
    for row in rows:
        row["of_total"] = total
    return rows
