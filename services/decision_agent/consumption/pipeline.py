"""The consumption analysis over arrays of accounts: signals, churn risk, flags, anomalies.

One implementation for both paths: `ConsumptionAnalyzer` runs it on one account (arrays
with one row), the fleet scan on every account at once. No loop over accounts: the usage
part runs over blocks of `BLOCK_ACCOUNTS` accounts (small temporaries that stay in cache,
spread over the machine's cores by threads, as numpy releases the GIL), the rest over whole
columns. Every account's numbers depend on its own row only, so blocks never change them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import date

import numpy as np
import structlog

from contracts.common import Severity
from services.decision_agent.consumption.calendar import (
    day_number,
    from_day,
    shared_daily_calendar,
)
from services.decision_agent.consumption.detector_config import DetectorConfig
from services.decision_agent.consumption.inputs import (
    CLASS_NAMES,
    USAGE_METRICS,
    BoolArray,
    FleetInputs,
    FloatArray,
    IntArray,
)
from services.decision_agent.consumption.rule_models import TREND_CLASSES, ConsumptionRules
from services.decision_agent.consumption.trends import (
    CLASS_CODE,
    MONTH_DAYS,
    MONTHS_KEPT,
    MetricTrends,
    UsageHistory,
    concat_trends,
    growth_streak,
    metric_trends,
)
from services.decision_agent.consumption.usage_anomaly import Model, Reason, Scores, score_grid
from services.decision_agent.consumption.usage_events import (
    CRITICAL,
    DIRECTIONS,
    HIGH,
    MEDIUM,
    UsageEvents,
    concat_events,
    day_direction,
    day_severity,
    latest_events,
)

log = structlog.get_logger(__name__)
# The holiday calendars this process said it had run past (said once each).
_CALENDARS_RUN_PAST: set[date] = set()

# what an unscored day holds in each Scores field
UNSCORED = {"score": np.nan, "reason": Reason.NONE, "expected": np.nan, "model": Model.NONE}
BLOCK_ACCOUNTS = 4_096  # accounts per usage block (~40 MB of temporaries)
WORKERS = min(4, os.cpu_count() or 1)

SEVERITY_ORDER: tuple[Severity, ...] = (
    Severity.LOW,
    Severity.MEDIUM,
    Severity.HIGH,
    Severity.CRITICAL,
)
SEVERITY_CODE = {s: i for i, s in enumerate(SEVERITY_ORDER)}
# usage event severities (usage_events: 0 none, MEDIUM, HIGH, CRITICAL) -> SEVERITY_CODE
EVENT_SEVERITY_CODE = np.zeros(CRITICAL + 1, dtype=np.int64)
EVENT_SEVERITY_CODE[[MEDIUM, HIGH, CRITICAL]] = [
    SEVERITY_CODE[Severity.MEDIUM],
    SEVERITY_CODE[Severity.HIGH],
    SEVERITY_CODE[Severity.CRITICAL],
]
SIGNALS: tuple[str, ...] = (
    "usage_trend",
    "usage_mom_decline",
    "queries_below_half_history",
    "idle_14_days",
    "support_escalation",
    "high_priority_ticket",
    "active_users_decline",
    "single_user",
    "few_users",
    "committed_spend_underused",
    "spend_decline",
    "no_active_agreement",
    "renewal_near_no_activity",
    "renewal_immediate",
    "renewal_near",
    "ingestion_trend",
    "compute_trend",
    "no_ingestion_30_days",
    "no_customer_call_30_days",
    "no_opportunity",
)


@dataclass(frozen=True)
class Commercials:
    """Per account: tickets, contract and calls as of the analysis day."""

    high_tickets: IntArray
    monthly_commit: FloatArray
    has_agreement: BoolArray
    utilization: FloatArray  # last 30 days' spend / monthly commitment
    days_to_renewal: FloatArray  # inf when no active agreement ends after as_of
    calls: IntArray
    max_users: FloatArray
    active_days: IntArray


@dataclass(frozen=True)
class RiskState:
    trends: MetricTrends
    commercials: Commercials
    signals: dict[str, FloatArray]
    factor_points: dict[str, FloatArray]  # class -> accounts x its factors (risk points)
    risk: IntArray


@dataclass(frozen=True)
class FleetAssessment:
    inputs: FleetInputs
    now: RiskState
    previous: RiskState  # as of as_of - escalation_lookback_days
    health: IntArray
    escalate: BoolArray
    flags: dict[str, BoolArray]
    severity: dict[str, IntArray]
    anomalies: dict[str, Scores]  # metric -> accounts x the event look-back days
    events: dict[str, dict[str, UsageEvents]]  # metric -> direction -> latest event

    @property
    def risk(self) -> IntArray:
        return self.now.risk


def trend_index(rules: ConsumptionRules, metric: str) -> int:
    return rules.trend.metrics.index(metric)


@dataclass(frozen=True)
class UsageState:
    """What the usage says as of one day: trends of the trend metrics, users, active days."""

    trends: MetricTrends
    max_users: FloatArray  # most active users on a day of the last `recent_days`
    active_days: IntArray  # days with primary-metric usage in the history


def _usage_states(
    inputs: FleetInputs, rules: ConsumptionRules, accounts: slice, lookbacks: tuple[int, ...]
) -> list[UsageState]:
    """Usage states of a block of accounts, `lookback` days before the analysis day each."""
    metrics = [USAGE_METRICS.index(m) for m in rules.trend.metrics]
    history = UsageHistory.build(inputs.usage[metrics, accounts], inputs.first_col[accounts])
    users = inputs.metric("active_users")[accounts]
    primary = inputs.metric(rules.trend.primary_metric)[accounts] > 0
    active = np.zeros((primary.shape[0], primary.shape[1] + 1), dtype=np.int32)
    np.cumsum(primary, axis=1, out=active[:, 1:])
    states = []
    for lookback in lookbacks:
        end = inputs.days - lookback
        states.append(
            UsageState(
                trends=metric_trends(history, end, rules.trend),
                max_users=users[:, max(end - rules.trend.recent_days, 0) : end]
                .max(axis=1, initial=0.0)
                .astype(np.float64),
                active_days=active[:, end].astype(np.int64),
            )
        )
    return states


def _commercials(
    inputs: FleetInputs, rules: ConsumptionRules, usage: UsageState, as_of: int
) -> Commercials:
    n = len(inputs.account_ids)
    sig = rules.signals
    t = inputs.tickets
    recent = (t.day > as_of - sig.ticket_window_days) & (t.day <= as_of) & t.high
    high_tickets = np.bincount(t.account[recent], minlength=n)
    a = inputs.agreements
    covering = a.active & (a.start_day <= as_of) & (a.end_day >= as_of)
    monthly = np.bincount(a.account[covering], weights=a.monthly_usd[covering], minlength=n).astype(
        np.float64
    )
    has_agreement = np.bincount(a.account[covering], minlength=n) > 0
    renewal = np.full(n, np.inf)
    ahead = a.active & (a.end_day >= as_of)
    np.minimum.at(renewal, a.account[ahead], (a.end_day[ahead] - as_of).astype(np.float64))
    cost = usage.trends.recent_total[:, trend_index(rules, "cost_usd")]
    with np.errstate(invalid="ignore", divide="ignore"):
        utilization = np.where(monthly > 0, cost / monthly, np.nan)
    c = inputs.calls
    in_window = (c.day > as_of - sig.call_window_days) & (c.day <= as_of)
    return Commercials(
        high_tickets=high_tickets,
        monthly_commit=monthly,
        has_agreement=has_agreement,
        utilization=utilization,
        days_to_renewal=renewal,
        calls=np.bincount(c.account[in_window], minlength=n),
        max_users=usage.max_users,
        active_days=usage.active_days,
    )


def _signals(
    inputs: FleetInputs,
    rules: ConsumptionRules,
    trends: MetricTrends,
    com: Commercials,
    tenure_days: FloatArray,
) -> dict[str, FloatArray]:
    tr = rules.trend
    sig = rules.signals
    risk_of = np.array([tr.risk_by_class.get(name, 0.0) for name in TREND_CLASSES])
    decline = np.isin(trends.trend_class, [CLASS_CODE[c] for c in tr.decline_classes])
    q = trend_index(rules, tr.primary_metric)
    users = trend_index(rules, "active_users")
    cost = trend_index(rules, "cost_usd")
    ingest = trend_index(rules, "data_ingested_bytes")
    engine = trend_index(rules, "engine_hours")
    idle = trends.idle_days[:, q] >= tr.idle_days
    renewal_near = com.days_to_renewal <= sig.renewal_window_days
    established = trends.trend_class[:, q] != CLASS_CODE["New"]
    flags: dict[str, BoolArray | FloatArray] = {
        "usage_trend": risk_of[trends.trend_class[:, q]],
        "usage_mom_decline": trends.mom[:, q] < sig.mom_decline_below,
        "queries_below_half_history": established & (trends.ratio[:, q] < sig.below_history_ratio),
        "idle_14_days": idle,
        "support_escalation": com.high_tickets >= sig.escalation_ticket_count,
        "high_priority_ticket": com.high_tickets >= 1,
        "active_users_decline": decline[:, users],
        "single_user": (tenure_days >= sig.single_user_after_days) & (com.max_users <= 1),
        "few_users": com.max_users < sig.few_users_below,
        "committed_spend_underused": com.has_agreement & (com.utilization < sig.underused_below),
        "spend_decline": decline[:, cost],
        "no_active_agreement": ~com.has_agreement,
        "renewal_near_no_activity": renewal_near & (idle | decline[:, q]),
        "renewal_immediate": com.days_to_renewal <= min(rules.renewal_phases.values()),
        "renewal_near": renewal_near,
        "ingestion_trend": risk_of[trends.trend_class[:, ingest]],
        "compute_trend": risk_of[trends.trend_class[:, engine]],
        "no_ingestion_30_days": trends.recent_total[:, ingest] <= 0,
        "no_customer_call_30_days": com.calls == 0,
        "no_opportunity": ~inputs.has_opportunity,
    }
    return {name: np.asarray(value, dtype=np.float64) for name, value in flags.items()}


def risk_state(
    inputs: FleetInputs, rules: ConsumptionRules, usage: UsageState, lookback: int = 0
) -> RiskState:
    """Signals and churn risk as of `lookback` days before the analysis day."""
    com = _commercials(inputs, rules, usage, inputs.as_of_day - lookback)
    signals = _signals(inputs, rules, usage.trends, com, inputs.tenure_days - lookback)
    total = np.zeros(len(inputs.account_ids))
    factor_points: dict[str, FloatArray] = {}
    for code, class_name in enumerate(CLASS_NAMES):
        factors = rules.classes[class_name].factors
        points = np.stack(
            [
                f.weight
                * np.max(np.stack([signals[s] * share for s, share in f.signals.items()]), axis=0)
                for f in factors.values()
            ],
            axis=1,
        )
        factor_points[class_name] = points
        total = np.where(inputs.customer_class == code, points.sum(axis=1), total)
    risk = np.clip(np.rint(total), 0, 100).astype(np.int64)
    return RiskState(usage.trends, com, signals, factor_points, risk)


def _warn_past_the_holiday_list(cfg: DetectorConfig, last_day: int) -> None:
    """Rules without holiday rules (`holiday_calendar`) list holidays as dates. Analysed past
    the last one, the next holidays read as quiet business days, and every account that
    closes for them "drops" (a fleet-wide usage_anomaly for a week): the rule file needs next
    year's dates, or holiday rules (which hold for every year)."""
    if cfg.holiday_calendar is not None or not cfg.holidays:
        return
    last_listed = max(cfg.holidays)
    if last_day > day_number(last_listed) and last_listed not in _CALENDARS_RUN_PAST:
        _CALENDARS_RUN_PAST.add(last_listed)
        log.warning(
            "holiday_calendar_ended",
            last_listed_holiday=last_listed.isoformat(),
            hint="give holiday rules (holiday_calendar) in consumption.yaml's "
            "anomalies.detector, or add the coming holidays to its holidays",
        )


def _anomalies(inputs: FleetInputs, rules: ConsumptionRules, accounts: slice) -> dict[str, Scores]:
    """Daily scores of the event look-back days (the last column is the analysis day).

    Every account's recent days are scored; the older look-back days only for accounts
    with a flagged recent day: only their events can be new or worse (usage_events), and
    the older days tell when those events began. Other accounts' older days read as
    unscored (NaN). Scores of a day do not depend on which days are scored.
    """
    cfg = rules.anomalies.detector
    days = inputs.days
    lookback = rules.anomalies.event_lookback_days
    recent = rules.anomalies.recent_days
    first, last = inputs.first_day, inputs.first_day + days - 1
    holidays = cfg.closed_days(from_day(first), from_day(last))
    cal = shared_daily_calendar(first, days, holidays, tuple(cfg.weekend_days))
    _warn_past_the_holiday_list(cfg, last)
    found = {}
    for metric in rules.anomalies.metrics:
        series = inputs.series(metric, accounts)
        latest = score_grid(series, cal, cfg, days - recent)
        rows = np.flatnonzero(np.any(np.nan_to_num(latest.score) >= cfg.alert_score, axis=1))
        older = score_grid(series[rows], cal, cfg, days - lookback) if len(rows) else None
        n = series.shape[0]
        parts = {}
        for f in fields(Scores):
            recent_part = getattr(latest, f.name)
            whole = np.empty((n, lookback), dtype=recent_part.dtype)
            whole[:, : lookback - recent] = UNSCORED[f.name]
            whole[:, lookback - recent :] = recent_part
            if older is not None:
                whole[rows] = getattr(older, f.name)
            parts[f.name] = whole
        found[metric] = Scores(**parts)
    return found


def _events(
    inputs: FleetInputs, rules: ConsumptionRules, accounts: slice, scores: dict[str, Scores]
) -> dict[str, dict[str, UsageEvents]]:
    anomalies = rules.anomalies
    lookback = anomalies.event_lookback_days
    found: dict[str, dict[str, UsageEvents]] = {}
    for metric, scored in scores.items():
        values = inputs.series(metric, accounts)[:, -lookback:]
        severity = day_severity(scored, anomalies.detector.alert_score)
        direction = day_direction(scored, values)
        found[metric] = {
            name: latest_events(
                severity,
                direction,
                scored.score,
                sign,
                anomalies.merge_gap_days,
                anomalies.recent_days,
            )
            for name, sign in zip(DIRECTIONS, (-1, 1), strict=True)
        }
    return found


@dataclass(frozen=True)
class UsageBlock:
    """The usage part of the analysis for a block of accounts (or all of them)."""

    now: UsageState
    previous: UsageState
    anomalies: dict[str, Scores]
    events: dict[str, dict[str, UsageEvents]]


def _usage_block(inputs: FleetInputs, rules: ConsumptionRules, accounts: slice) -> UsageBlock:
    now, previous = _usage_states(inputs, rules, accounts, (0, rules.escalation_lookback_days))
    scores = _anomalies(inputs, rules, accounts)
    return UsageBlock(now, previous, scores, _events(inputs, rules, accounts, scores))


def _merge_states(states: list[UsageState]) -> UsageState:
    return UsageState(
        concat_trends([s.trends for s in states]),
        np.concatenate([s.max_users for s in states]),
        np.concatenate([s.active_days for s in states]),
    )


def _merge_scores(parts: list[Scores]) -> Scores:
    return Scores(
        **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Scores)}
    )


def usage_blocks(inputs: FleetInputs, rules: ConsumptionRules) -> UsageBlock:
    """Usage states (now and at the look-back) and anomaly scores of every account."""
    if inputs.days - rules.escalation_lookback_days < MONTHS_KEPT * MONTH_DAYS:
        raise ValueError("history_days too short for the look-back and the monthly trend")
    n = len(inputs.account_ids)
    blocks = [slice(k, min(k + BLOCK_ACCOUNTS, n)) for k in range(0, max(n, 1), BLOCK_ACCOUNTS)]
    if len(blocks) > 1 and WORKERS > 1:
        with ThreadPoolExecutor(WORKERS) as pool:
            parts = list(pool.map(lambda b: _usage_block(inputs, rules, b), blocks))
    else:
        parts = [_usage_block(inputs, rules, b) for b in blocks]
    return UsageBlock(
        _merge_states([p.now for p in parts]),
        _merge_states([p.previous for p in parts]),
        {m: _merge_scores([p.anomalies[m] for p in parts]) for m in rules.anomalies.metrics},
        {
            m: {d: concat_events([p.events[m][d] for p in parts]) for d in DIRECTIONS}
            for m in rules.anomalies.metrics
        },
    )


def _severity(name: str, rules: ConsumptionRules, n: int) -> IntArray:
    return np.full(n, SEVERITY_CODE[rules.flags[name].severity], dtype=np.int64)


def assess(inputs: FleetInputs, rules: ConsumptionRules) -> FleetAssessment:
    """Everything the consumption agent concludes, for every account in `inputs`."""
    n = len(inputs.account_ids)
    usage = usage_blocks(inputs, rules)
    now = risk_state(inputs, rules, usage.now)
    previous = risk_state(inputs, rules, usage.previous, rules.escalation_lookback_days)
    escalate = (now.risk > rules.escalation_above) | (
        now.risk - previous.risk >= rules.escalation_rise
    )
    tr, ex, sig = rules.trend, rules.expansion, rules.signals
    trends, com, s = now.trends, now.commercials, now.signals
    q = trend_index(rules, tr.primary_metric)
    cost = trend_index(rules, "cost_usd")
    q_class = trends.trend_class[:, q]
    anomalies = usage.anomalies
    alert = np.zeros(n, dtype=np.bool_)
    worst = np.zeros(n, dtype=np.int64)
    for by_direction in usage.events.values():
        for events in by_direction.values():
            alert |= events.reported
            worst = np.maximum(worst, np.where(events.reported, events.severity, 0))
    cost_months = trends.months[:, cost]
    plg_spend = np.all(cost_months[:, -ex.plg_spend_months :] >= ex.plg_monthly_spend_min, axis=1)

    flags: dict[str, BoolArray] = {
        "usage_decline": np.isin(q_class, [CLASS_CODE[c] for c in tr.decline_classes]),
        "usage_spike": q_class == CLASS_CODE["Spike"],
        "usage_growth": q_class == CLASS_CODE["Growing"],
        "usage_anomaly": alert,
        "cost_anomaly": (trends.trend_class[:, cost] != CLASS_CODE["New"])
        & (trends.ratio[:, cost] >= ex.cost_spike_ratio)
        & ~(trends.ratio[:, q] >= ex.cost_usage_growth_max),
        "engagement_drop": (s["active_users_decline"] > 0) | (s["single_user"] > 0),
        "support_escalation": s["support_escalation"] > 0,
        "contract_approaching": s["renewal_near"] > 0,
        "committed_spend_underused": s["committed_spend_underused"] > 0,
        "usage_above_commitment": com.has_agreement & (com.utilization >= sig.overused_from),
        "sustained_growth": growth_streak(trends.months[:, q], ex.month_growth_min)
        >= ex.growth_streak_months,
        "plg_to_commit": (inputs.customer_class == CLASS_NAMES.index("plg"))
        & plg_spend
        & (com.active_days >= ex.plg_active_days_min)
        & (com.max_users >= ex.plg_users_min),
        "churn_risk_escalation": escalate,
    }
    severity = {name: _severity(name, rules, n) for name in flags}
    decline_severity = np.array(
        [SEVERITY_CODE[tr.decline_severity.get(c, Severity.MEDIUM)] for c in TREND_CLASSES]
    )
    severity["usage_decline"] = decline_severity[q_class]
    severity["usage_anomaly"] = EVENT_SEVERITY_CODE[np.maximum(worst, MEDIUM)]
    urgent = (s["renewal_immediate"] > 0) | (s["renewal_near_no_activity"] > 0)
    severity["contract_approaching"] = np.where(
        urgent, SEVERITY_CODE[Severity.HIGH], severity["contract_approaching"]
    )
    return FleetAssessment(
        inputs=inputs,
        now=now,
        previous=previous,
        health=100 - now.risk,
        escalate=escalate,
        flags=flags,
        severity=severity,
        anomalies=anomalies,
        events=usage.events,
    )
