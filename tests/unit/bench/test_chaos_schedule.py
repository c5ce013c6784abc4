"""bench.chaos: which processes die and when (seeded), where its report places repeated flow
records, and the database a replicated run shares."""

from __future__ import annotations

import random
from contextlib import ExitStack

import psycopg
from hypothesis import given
from hypothesis import strategies as st

from bench.audit import Audit
from bench.chaos import ChaosPlan, ChaosReport, kill_victims, schedule, shared_database
from services.cli.orchestrator import SERVICES


@given(replicas=st.integers(1, 6), kills=st.integers(0, 12), seed=st.integers(0, 2**32))
def test_kills_cover_every_replica_before_hitting_one_again(
    replicas: int, kills: int, seed: int
) -> None:
    victims = kill_victims(random.Random(seed), replicas, kills)

    assert len(victims) == kills
    assert all(0 <= v < replicas for v in victims)
    assert len(set(victims)) == min(kills, replicas)


def test_replicated_plan_kills_replicas_of_every_service_and_restarts_the_broker() -> None:
    plan = ChaosPlan(replicas=3, kills_per_service=3, restart_broker=True, seed=5)
    faults = schedule(plan)

    kills = [f for f in faults if f.kind == "kill"]
    for name in SERVICES:
        assert sorted(f.replica for f in kills if f.target == name) == [0, 1, 2]
    brokers = [f for f in faults if f.kind == "broker"]
    assert len(brokers) == 1
    assert plan.first_fault_at <= brokers[0].at_progress <= plan.last_fault_at
    assert [f.at_progress for f in faults] == sorted(f.at_progress for f in faults)
    assert schedule(plan) == faults  # the seed fixes it


def test_single_process_plan_only_kills_the_stack_process() -> None:
    kills = [f for f in schedule(ChaosPlan(kills_per_service=3)) if f.kind == "kill"]

    assert len(kills) == 3 * len(SERVICES)
    assert {f.replica for f in kills} == {0}


def test_repeated_flow_records_are_placed_in_the_run_s_time() -> None:
    report = ChaosReport(ChaosPlan(), [], started_wall=1_000.0)
    report.audit = Audit(duplicate_flow_records=3, duplicate_flow_times=[1_125.2, 1_125.9, 1_310.0])
    summary = report.summary()
    assert summary["duplicate_flow_records_same_message_id"] == 3
    assert summary["duplicate_flow_records_by_second"] == {125: 2, 310: 1}


def test_a_replicated_run_without_a_url_gets_a_database_of_its_own() -> None:
    """`make chaos-replicas` without REVOPS_DATABASE_URL: a throwaway server's database,
    as a URL the services can be given (it was once the function that makes one)."""
    with ExitStack() as stack:
        assert shared_database(stack, "postgresql://given/db", 3) == "postgresql://given/db"
        assert shared_database(stack, None, 1) is None  # one replica: its SQLite files
        url = shared_database(stack, None, 3)
        assert isinstance(url, str)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
