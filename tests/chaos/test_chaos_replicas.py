"""CI-sized kill -9 run with three processes of every service sharing one PostgreSQL store
(the long form, `make chaos-replicas`, also restarts the broker): two replicas of every
service, drawn at random, are SIGKILLed at random moments while the others keep consuming,
and the CRM destination fails then hangs. Afterwards every trigger has exactly one flow
output, every action reached its destination exactly once (or was queued for its digest), in
order per account, with no duplicated active insight and the delivery log agreeing with the
destination."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.chaos import ChaosPlan, run_chaos
from tests.chaos.accounting import assert_every_effect_accounted_for
from tests.postgres_server import PostgresServer

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

PLAN = ChaosPlan(
    triggers=120,
    rate=6.0,
    kills_per_service=2,
    # Off here: after a long broker absence a replica's producer can stay stuck on
    # LeaderNotAvailableError until the process restarts (seen in `make chaos-replicas` on a
    # box at load 30), which would make this test fail by chance. The single-process fault
    # run restarts the broker.
    restart_broker=False,
    outage_s=10.0,
    seed=5,
    stall_timeout_s=120.0,
    drain_timeout_s=420.0,
    replicas=3,
)


def test_three_replicas_on_postgresql_lose_and_duplicate_nothing(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    report = run_chaos(PLAN, tmp_path, database_url=postgres.fresh_database())
    summary = report.summary()
    print(json.dumps(summary, indent=2, default=str))

    assert summary["replicas_per_service"] == 3
    assert summary["kills"] == 8
    # Two distinct processes of every service kind died, so never only the first one.
    assert all(len(killed) == 2 for killed in summary["killed_replicas"].values())
    assert_every_effect_accounted_for(summary, PLAN.triggers)
    assert report.ok
