"""Detection quality on injected events over weekends and holidays.

Floors (why these numbers): an event should be caught on its first or second day, since the
agent scans daily and a CSM wants days, not weeks, of warning -> median delay <= 1 day.
Stops, drops to 30% and 4x spikes are far outside 12% day-to-day noise -> recall >= 0.95.
A 55% level shift is closer to the noise -> recall >= 0.9. Weekends and holidays must not
alarm: precision >= 0.8 over all alarms (an alarm = a run of consecutive alerting days;
alarms within 7 days after an event ends are the return to normal, not false alarms).
"""

from __future__ import annotations

import numpy as np

from services.decision_agent.consumption.detector_config import DetectorConfig
from services.decision_agent.consumption.usage_series import score_series
from tests.unit.consumption.usage_synthetic import EVENT_TYPES, HOLIDAYS, daily_series

RECOVERY_DAYS = 7
DETECT_WITHIN = 3
RECALL_FLOOR = {"stop": 0.95, "drop": 0.95, "spike": 0.95, "level_shift": 0.9}
PRECISION_FLOOR = 0.8
DELAY_CEILING = 1.0


def _alarm_starts(alert: np.ndarray) -> list[int]:
    return [k for k in range(len(alert)) if alert[k] and (k == 0 or not alert[k - 1])]


def test_precision_recall_and_delay_per_event_type() -> None:
    cfg = DetectorConfig(holidays=HOLIDAYS)
    found = {k: 0 for k in EVENT_TYPES}
    total = {k: 0 for k in EVENT_TYPES}
    delays: dict[str, list[int]] = {k: [] for k in EVENT_TYPES}
    true_alarms = false_alarms = 0
    for seed in range(80):
        series = daily_series(seed)
        result = score_series(series.times_s, series.values, cfg)
        alert = np.nan_to_num(result.score) >= cfg.alert_score
        for event in series.events:
            total[event.kind] += 1
            window = alert[event.start : event.start + DETECT_WITHIN]
            if window.any():
                found[event.kind] += 1
                delays[event.kind].append(int(np.argmax(window)))
        for start in _alarm_starts(alert):
            if any(e.start <= start < e.start + e.length + RECOVERY_DAYS for e in series.events):
                true_alarms += 1
            else:
                false_alarms += 1
    for kind in EVENT_TYPES:
        recall = found[kind] / total[kind]
        assert recall >= RECALL_FLOOR[kind], (kind, recall)
        assert np.median(delays[kind]) <= DELAY_CEILING, (kind, delays[kind])
    precision = true_alarms / (true_alarms + false_alarms)
    assert precision >= PRECISION_FLOOR, (precision, true_alarms, false_alarms)


def test_weekends_and_holidays_alone_do_not_alarm() -> None:
    cfg = DetectorConfig(holidays=HOLIDAYS)
    alerts = 0
    for seed in range(10):
        series = daily_series(seed, event=False)
        result = score_series(series.times_s, series.values, cfg)
        alerts += int(np.sum(np.nan_to_num(result.score) >= cfg.alert_score))
    assert alerts <= 10  # 3,000 days with ~860 off-days: under 0.4% alert days


def test_holiday_calendar_removes_holiday_alarms() -> None:
    series = daily_series(5, noise=0.05, event=False)
    values = series.values
    with_calendar = score_series(series.times_s, values, DetectorConfig(holidays=HOLIDAYS))
    without = score_series(series.times_s, values, DetectorConfig())
    alerts_with = np.sum(np.nan_to_num(with_calendar.score) >= 0.5)
    alerts_without = np.sum(np.nan_to_num(without.score) >= 0.5)
    assert alerts_with < alerts_without


def test_reasons_name_the_event() -> None:
    cfg = DetectorConfig(holidays=HOLIDAYS)
    seen: dict[str, set[str]] = {k: set() for k in EVENT_TYPES}
    for seed in range(16):
        series = daily_series(seed)
        result = score_series(series.times_s, series.values, cfg)
        event = series.events[0]
        seen[event.kind].update(result.reason[event.start : event.start + event.length])
    assert "stop" in seen["stop"]
    assert "spike" in seen["spike"]
    assert seen["drop"] & {"drop", "level_shift"}
    assert "level_shift" in seen["level_shift"]
