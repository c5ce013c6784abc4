"""The data behind the deal and account pages: warehouse facts (through the data agent's
`DatasetRepository`, as the analysis saw them), the analyses the execution agent kept, and
the insights on the subject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from contracts.analysis import AnalysisResults
from contracts.common import AnalysisType, utcnow
from contracts.dataset import Agreement, Call, DatasetBase, UsageDay
from services.common.stores.database import Database
from services.console import charts
from services.console.evidence import CALL_FIELDS, all_evidence, highlight, quotes_by_call
from services.console.inbox import Inbox, InboxFilter, InboxRow
from services.data_agent.datasets import DatasetRepository
from services.decision_agent.consumption.rule_models import ConsumptionRules
from services.decision_agent.consumption.usage_series import score_series
from services.execution_agent.health import HealthRecord, HealthRepository
from services.execution_agent.history import AnalysisHistory

USAGE_METRICS: dict[str, str] = {
    "query_count": "Queries",
    "engine_hours": "Engine hours",
    "fbu": "Compute units (FBU)",
    "data_scanned_bytes": "Data scanned (bytes)",
    "data_ingested_bytes": "Data ingested (bytes)",
    "cost_usd": "Cost (USD)",
    "active_users": "Active users",
}
DEAL_SCORES = ("deal_quality", "deal_health", "icp_fit", "technical_fit", "data_completeness")
ACCOUNT_SCORES = ("customer_health", "churn_risk")
DAY_S = 86_400
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class AnomalyEvent:
    day: date
    metric: str
    value: float
    expected: float
    score: float
    reason: str


@dataclass
class MetricChart:
    metric: str
    label: str
    svg: Any
    points: int
    events: list[AnomalyEvent]
    trend: str | None  # the analysis's sentence about this metric's trend


@dataclass
class CallView:
    call: Call
    fields: dict[str, Any]  # field -> highlighted markup
    quotes: int


@dataclass
class DealView:
    dataset: DatasetBase
    analysis: AnalysisResults | None
    score_chart: Any
    history_points: int
    calls: list[CallView]
    insights: list[InboxRow]
    evidence_count: int = 0


@dataclass
class AccountView:
    dataset: DatasetBase
    analysis: AnalysisResults | None
    health: HealthRecord | None
    usage_charts: list[MetricChart]
    health_chart: Any
    history_points: int
    contract: Agreement | None
    days_to_renewal: int | None
    open_deals: list[dict[str, Any]]
    insights: list[InboxRow]
    windows: list[charts.Window] = field(default_factory=list)


class SubjectPages:
    def __init__(
        self,
        store: Database,
        datasets: DatasetRepository,
        history: AnalysisHistory,
        health: HealthRepository,
        consumption_rules: ConsumptionRules,
        inbox: Inbox,
    ) -> None:
        self._store = store
        self.datasets = datasets
        self._history = history
        self._health = health
        self._rules = consumption_rules
        self._inbox = inbox

    # -- deal -----------------------------------------------------------------------------
    def deal(self, opportunity_id: str) -> DealView:
        account_id = self._account_of(opportunity_id)
        dataset, _, _ = self.datasets.deal_dataset(account_id, opportunity_id)
        analysis = self._history.latest_result(
            AnalysisType.DEAL_QUALITY.value, account_id, opportunity_id
        )
        entries = self._history.for_opportunity(opportunity_id)
        series = [
            charts.Series(
                key.replace("_", " "),
                [(e.analyzed_at, float(e.scores[key])) for e in entries if key in e.scores],
            )
            for key in DEAL_SCORES
        ]
        series = [s for s in series if s.points]
        chart = charts.line_chart(
            "score-history",
            "Score history",
            f"{len(entries)} analyses of this deal: " + ", ".join(s.name for s in series),
            series,
            y_min=0,
            y_max=100,
        )
        evidence = all_evidence(analysis) if analysis else []
        quotes = quotes_by_call(evidence)
        calls = []
        for call in sorted(dataset.calls, key=lambda c: c.start_ts, reverse=True):
            passages = quotes.get(call.call_id, set())
            fields, marked = {}, 0
            for name in CALL_FIELDS:
                markup, count = highlight(getattr(call, name), passages)
                fields[name] = markup
                marked += count
            calls.append(CallView(call, fields, marked))
        insights = self._inbox.page(
            InboxFilter(status="all", opportunity_id=opportunity_id, account_id=account_id)
        ).rows
        return DealView(
            dataset, analysis, chart, len(entries), calls, insights, evidence_count=len(evidence)
        )

    def _account_of(self, opportunity_id: str) -> str:
        with self._store.reader() as conn:
            row = conn.execute(
                "SELECT account_id FROM console_deals WHERE opportunity_id = ?", (opportunity_id,)
            ).fetchone()
        if row is not None:
            return str(row["account_id"])
        from services.data_agent.datasets import UnknownSubjectError
        from services.data_agent.warehouse.queries import OPPORTUNITY_BY_ID

        rows = self.datasets.warehouse.fetch_all(
            OPPORTUNITY_BY_ID, {"opportunity_id": opportunity_id[:64]}
        )
        if not rows:
            raise UnknownSubjectError(f"unknown opportunity {opportunity_id!r}")
        return str(rows[0]["sf_account_id"])

    # -- account --------------------------------------------------------------------------
    def account(self, account_id: str) -> AccountView:
        dataset, _, _ = self.datasets.account_dataset(account_id)
        as_of = dataset.as_of or utcnow().date()
        analysis = self._history.latest_result(AnalysisType.CONSUMPTION.value, account_id)
        trends = _trend_sentences(analysis)
        start = as_of - timedelta(days=364)
        usage = [u for u in dataset.usage_series().to_rows() if u.usage_date >= start]
        recent = self._rules.trend.recent_days
        prior = self._rules.trend.prior_days
        recent_start = as_of - timedelta(days=recent - 1)
        windows = [
            charts.Window(
                recent_start - timedelta(days=prior),
                recent_start - timedelta(days=1),
                f"prior {prior} days",
                "prior",
            ),
            charts.Window(recent_start, as_of, f"last {recent} days", "recent"),
        ]
        metric_charts = [
            self._metric_chart(metric, label, usage, windows, (start, as_of), trends.get(metric))
            for metric, label in USAGE_METRICS.items()
        ]
        entries = self._history.for_account(account_id)
        health_chart = charts.line_chart(
            "health-history",
            "Health and churn risk over time",
            f"{len(entries)} consumption analyses of this account",
            [
                charts.Series(
                    key.replace("_", " "),
                    [(e.analyzed_at, float(e.scores[key])) for e in entries if key in e.scores],
                )
                for key in ACCOUNT_SCORES
            ],
            y_min=0,
            y_max=100,
        )
        contract = _current_contract(dataset.agreements, as_of)
        return AccountView(
            dataset=dataset,
            analysis=analysis,
            health=self._health.get(account_id),
            usage_charts=metric_charts,
            health_chart=health_chart,
            history_points=len(entries),
            contract=contract,
            days_to_renewal=(contract.end_date - as_of).days if contract else None,
            open_deals=self._open_deals(account_id),
            insights=self._inbox.page(InboxFilter(status="all", account_id=account_id)).rows,
            windows=windows,
        )

    def _metric_chart(
        self,
        metric: str,
        label: str,
        usage: list[UsageDay],
        windows: list[charts.Window],
        x_range: tuple[date, date],
        trend: str | None,
    ) -> MetricChart:
        events = anomaly_events(metric, usage, self._rules)
        points = [(u.usage_date, float(getattr(u, metric))) for u in usage]
        markers = [
            charts.Marker(
                e.day,
                e.value,
                f"{e.day.isoformat()}: {label} {e.value:,.0f}, expected {e.expected:,.0f} "
                f"({e.reason.replace('_', ' ')}, score {e.score:.2f})",
            )
            for e in events
        ]
        svg = charts.line_chart(
            f"usage-{metric}",
            f"{label}, last 365 days",
            f"{len(points)} days, {len(events)} anomaly events marked; shaded: the trend "
            "windows the analysis compares",
            [charts.Series(label, points)],
            markers=markers,
            windows=windows,
            x_range=x_range,
        )
        return MetricChart(metric, label, svg, len(points), events, trend)

    def _open_deals(self, account_id: str) -> list[dict[str, Any]]:
        with self._store.reader() as conn:
            rows = conn.execute(
                "SELECT d.opportunity_id, d.name, d.stage, d.amount, d.close_date, "
                "p.name AS owner_name, l.headline_score, l.headline_band "
                "FROM console_deals d LEFT JOIN console_people p ON p.owner_id = d.owner_id "
                "LEFT JOIN revops_ai_latest_analysis l ON l.opportunity_id = d.opportunity_id "
                "AND l.analysis_type = 'deal_quality' "
                "WHERE d.account_id = ? AND d.is_open = 1 ORDER BY d.close_date NULLS FIRST",
                (account_id,),
            ).fetchall()
        return [dict(r) for r in rows]


def anomaly_events(
    metric: str, usage: list[UsageDay], rules: ConsumptionRules
) -> list[AnomalyEvent]:
    """The days the consumption rules' detector scores at or above its alert score."""
    if not usage:
        return []
    cfg = rules.anomalies.detector
    times = np.array([(u.usage_date - EPOCH).days * DAY_S for u in usage], dtype=np.float64)
    values = np.array([float(getattr(u, metric)) for u in usage], dtype=np.float64)
    scored = score_series(times, values, cfg, step_s=DAY_S)
    events = []
    for k, day in enumerate(usage):
        score = float(scored.score[k])
        if np.isfinite(score) and score >= cfg.alert_score:
            events.append(
                AnomalyEvent(
                    day.usage_date,
                    metric,
                    float(values[k]),
                    float(scored.expected[k]),
                    score,
                    scored.reason[k],
                )
            )
    return events


def _trend_sentences(analysis: AnalysisResults | None) -> dict[str, str]:
    if analysis is None:
        return {}
    detail = analysis.analysis_results.score_details.get("usage_trend")
    if detail is None:
        return {}
    return {f.factor: f.explanation or "" for f in detail.factors}


def _current_contract(agreements: list[Agreement], as_of: date) -> Agreement | None:
    """The active agreement that ends last (its end date is the renewal date)."""
    active = [a for a in agreements if a.is_active and a.end_date >= as_of]
    return max(active, key=lambda a: a.end_date, default=None)
