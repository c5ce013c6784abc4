"""One alert per usage event (same event id every day), again only when it gets worse."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from contracts.dataset import CustomerClass, Dataset
from services.common.settings import PROJECT_ROOT
from services.decision_agent.consumption.analyzer import (
    ConsumptionAnalyzer,
    load_consumption_rules,
)
from services.decision_agent.consumption.rule_models import ConsumptionRules
from services.decision_agent.consumption.usage_events import (
    CRITICAL,
    HIGH,
    MEDIUM,
    latest_events,
)
from tests.unit.consumption.factory import AS_OF, dataset

DOWN = -1


def _events(flags: list[int], direction: list[int] | None = None, recent: int = 3):
    severity = np.array([flags])
    sign = np.array([direction or [DOWN if f else 0 for f in flags]], dtype=np.int8)
    return latest_events(severity, sign, severity * 0.3, DOWN, 2, recent)  # merge gap 2


def test_flagged_days_close_together_are_one_event() -> None:
    # days:     0  1  2  3  4  5  6  7  8  9   (recent = the last 3)
    e = _events([0, 1, 1, 0, 0, 1, 0, 0, 1, 0])
    assert e.onset[0] == 1  # gaps of at most 2 unflagged days: one event since day 1
    assert not e.reported[0]  # it began before the recent days and did not get worse
    assert e.last_alert[0] == 8


def test_a_new_event_after_a_long_gap() -> None:
    e = _events([1, 1, 0, 0, 0, 1, 0, 0, 0, 0])
    assert e.onset[0] == 5 and not e.reported[0]
    e = _events([1, 1, 0, 0, 0, 0, 0, 0, 1, 1])
    assert e.onset[0] == 8 and e.reported[0] and not e.escalated[0]


def test_getting_worse_is_reported_again() -> None:
    e = _events([0, MEDIUM, MEDIUM, MEDIUM, MEDIUM, MEDIUM, MEDIUM, 0, CRITICAL, 0])
    assert e.onset[0] == 1 and e.reported[0] and e.escalated[0]
    assert e.severity[0] == CRITICAL
    same_level = _events([0, HIGH, HIGH, HIGH, HIGH, HIGH, HIGH, 0, MEDIUM, 0])
    assert not same_level.reported[0] and same_level.severity[0] == HIGH


def test_an_event_of_the_other_direction_is_its_own() -> None:
    e = _events([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], direction=[DOWN] * 5 + [1] * 5)
    assert e.onset[0] == 0 and not e.reported[0]


@pytest.fixture(scope="module")
def rules() -> ConsumptionRules:
    return load_consumption_rules(PROJECT_ROOT / "services" / "decision_agent" / "rules")


ONSET = AS_OF - timedelta(days=44)  # the factory's "decline" story: 35 % from this day on


def _replay(data: Dataset, rules: ConsumptionRules, days: int) -> dict[date, list]:
    analyzer = ConsumptionAnalyzer(rules)
    found = {}
    for k in range(-3, days):
        day = ONSET + timedelta(days=k)
        result = analyzer.analyze("r", data.model_copy(update={"as_of": day}), [])
        found[day] = result.analysis_results.flags
    return found


def test_a_lasting_drop_is_one_alert_then_a_trend(rules: ConsumptionRules) -> None:
    data = dataset("acc-drop", CustomerClass.COMMIT, "decline")
    replay = _replay(data, rules, 44)
    alerts = {day: [f for f in flags if f.code == "usage_anomaly"] for day, flags in replay.items()}
    alert_days = sorted(day for day, found in alerts.items() if found)
    assert alert_days and (alert_days[0] - ONSET).days <= 1
    ids = {f.event_id for found in alerts.values() for f in found}
    assert ids == {f"acc-drop:query_count:down:{alert_days[0].isoformat()}"}
    # reported while new (the recent 7 days), never again day after day
    assert len(alert_days) <= rules.anomalies.recent_days
    assert (alert_days[-1] - alert_days[0]).days < rules.anomalies.recent_days
    # the lasting drop is a state the trend shows
    assert "usage_decline" in {f.code for f in replay[AS_OF - timedelta(days=1)]}


def test_a_drop_that_becomes_a_stop_is_alerted_again(rules: ConsumptionRules) -> None:
    data = dataset("acc-worse", CustomerClass.COMMIT, "decline")
    stop = ONSET + timedelta(days=10)  # after the event's first week, before it is absorbed
    usage = [
        u.model_copy(update={"query_count": 0}) if u.usage_date >= stop else u for u in data.usage
    ]
    replay = _replay(data.model_copy(update={"usage": usage}), rules, 24)
    alerts = [(day, f) for day, flags in replay.items() for f in flags if f.code == "usage_anomaly"]
    first_id = alerts[0][1].event_id
    assert all(f.event_id == first_id for _, f in alerts)  # the same event throughout
    escalations = [(day, f) for day, f in alerts if f.severity.value == "critical"]
    assert escalations and (escalations[0][0] - stop).days <= 1
    quiet = [day for day, _ in alerts if ONSET + timedelta(days=8) <= day < stop]
    assert quiet == []  # nothing between the first week and the stop
