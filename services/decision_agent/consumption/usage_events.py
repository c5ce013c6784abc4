"""Usage anomaly events: one alert per event, per account and metric; again only if worse.

The daily usage scorer (usage_anomaly.score_grid) flags days. Flagged days of one
direction (down: drop, stop, level shift, a weekday looking like an off-day; up: spike)
with at most `merge_gap_days` unflagged days between them are one event. Its onset is its
first flagged day, and its id, `<account>:<metric>:<down|up>:<onset ISO date>`, stays the
same for its whole life, so every daily analysis names the same event and the execution
agent can tell a known event from a new one.

An event's severity is the worst it has been so far: medium, high from score 0.9,
critical for a stop. It is reported (flag usage_anomaly) while it is new (onset within the
last `recent_days`) or when it got worse within them (escalation, a severity it had not
reached before). Otherwise a lasting drop is a state, which the trend shows
(usage_decline), not a fresh anomaly every day. Events are followed over the last
`event_lookback_days` days (the days the scorer scores).

Everything is array arithmetic over accounts x days, no loop over accounts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from services.decision_agent.consumption.usage_anomaly import Reason, Scores

DIRECTIONS = ("down", "up")
MEDIUM, HIGH, CRITICAL = 1, 2, 3
SEVERITY_NAMES = ("none", "medium", "high", "critical")
HIGH_SCORE = 0.9


@dataclass(frozen=True)
class UsageEvents:
    """Per account, the latest event of one metric and direction (as of the last day)."""

    reported: NDArray[np.bool_]  # new or escalated within the recent days
    escalated: NDArray[np.bool_]  # reported because it got worse (not new)
    onset: NDArray[np.int64]  # index into the scored days (-1: no event)
    last_alert: NDArray[np.int64]  # index of its latest flagged day
    severity: NDArray[np.int64]  # worst so far (MEDIUM..CRITICAL), 0 without event
    peak: NDArray[np.int64]  # index of its highest-scoring day (the worst, latest first)


def concat_events(parts: list[UsageEvents]) -> UsageEvents:
    return UsageEvents(
        **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(UsageEvents)}
    )


def day_severity(scores: Scores, alert_score: float) -> NDArray[np.int64]:
    score = np.nan_to_num(scores.score)
    level = np.where(score >= HIGH_SCORE, HIGH, MEDIUM)
    level = np.where(scores.reason == Reason.STOP, CRITICAL, level)
    return np.where(score >= alert_score, level, 0).astype(np.int64)


def day_direction(scores: Scores, values: NDArray[np.floating]) -> NDArray[np.int8]:
    """+1 above the expectation, -1 below (0 where unknown)."""
    with np.errstate(invalid="ignore"):
        return np.sign(np.nan_to_num(values - scores.expected)).astype(np.int8)


def latest_events(
    severity: NDArray[np.int64],
    direction: NDArray[np.int8],
    score: NDArray[np.floating],
    sign: int,
    merge_gap_days: int,
    recent_days: int,
) -> UsageEvents:
    """The latest event of direction `sign` in accounts x days (the last day = as of)."""
    accounts, days = severity.shape
    flagged = (severity > 0) & (direction == sign)
    index = np.broadcast_to(np.arange(days), (accounts, days))
    never = -(merge_gap_days + 2)
    last_at = np.maximum.accumulate(np.where(flagged, index, never), axis=1)
    before = np.concatenate([np.full((accounts, 1), never), last_at[:, :-1]], axis=1)
    starts = flagged & (index - before > merge_gap_days + 1)
    onset_at = np.maximum.accumulate(np.where(starts, index, -1), axis=1)
    # worst severity so far within the current event: later events have larger onsets, so
    # the running maximum of onset * 4 + severity stays inside the current event
    code = np.where(flagged, onset_at * 4 + severity, -1)
    running = np.maximum.accumulate(code, axis=1)
    onset = onset_at[:, -1]
    has = onset >= 0
    worst = np.where(has, running[:, -1] - onset * 4, 0)
    cut = days - 1 - recent_days  # the last day before the recent window
    new = has & (onset > cut)
    if cut >= 0:
        same_event = onset_at[:, cut] == onset
        before_window = np.where(same_event & has, running[:, cut] - onset * 4, 0)
    else:
        before_window = np.zeros(accounts, dtype=np.int64)
    escalated = has & ~new & (worst > before_window)
    in_event = flagged & (index >= onset[:, None]) & has[:, None]
    # the event's strongest day (ties: the latest)
    strength = np.where(in_event, np.nan_to_num(score) + index * 1e-9, -np.inf)
    return UsageEvents(
        reported=new | escalated,
        escalated=escalated,
        onset=onset.astype(np.int64),
        last_alert=np.where(has, last_at[:, -1], -1).astype(np.int64),
        severity=worst.astype(np.int64),
        peak=np.where(has, np.argmax(strength, axis=1), -1).astype(np.int64),
    )


def event_id(account_id: str, metric: str, direction: str, onset_iso: str) -> str:
    return f"{account_id}:{metric}:{direction}:{onset_iso}"
