"""CI-sized kill -9 run (the long form is `make chaos`): a few hundred triggers while every
service is SIGKILLed three times, the broker is restarted once and the CRM destination
fails then hangs; afterwards every trigger has exactly one flow output and every action
reached its destination exactly once (or was queued for its digest), in order per account,
with no duplicated insight and the delivery log agreeing with what the destination saw.

The run uses a broker of its own (free port, temporary data) so the restart does not
disturb the other tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.chaos import ChaosPlan, run_chaos
from tests.chaos.accounting import assert_every_effect_accounted_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(420)]

PLAN = ChaosPlan(
    triggers=200,
    rate=10.0,
    kills_per_service=3,
    restart_broker=True,
    outage_s=16.0,
    seed=11,
    stall_timeout_s=90.0,
    drain_timeout_s=330.0,
)


def test_every_trigger_and_action_is_accounted_for_after_kills(tmp_path: Path) -> None:
    report = run_chaos(PLAN, tmp_path)
    summary = report.summary()
    print(json.dumps(summary, indent=2, default=str))

    assert summary["kills"] == 12
    assert all(n == 3 for n in summary["kills_per_service"].values())
    assert summary["broker_restarts"] == 1
    assert summary["outage"] is not None
    assert_every_effect_accounted_for(summary, PLAN.triggers)
    assert report.ok
