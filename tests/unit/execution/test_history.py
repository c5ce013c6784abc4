"""revops_ai_analysis_history: every analysis kept with its time; the newest per subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts import AnalysisBody, AnalysisResults, AnalysisType, ScoreDetail, Subject
from services.execution_agent.history import AnalysisHistory
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import ExecutionAgent
from services.execution_agent.store import Store
from tests.unit.execution.conftest import make_analysis, make_flag

DAY = datetime(2025, 6, 1, tzinfo=UTC)


def consumption(request_id: str, health: int, risk: int, band: str) -> AnalysisResults:
    return AnalysisResults(
        request_id=request_id,
        analysis_type=AnalysisType.CONSUMPTION,
        subject=Subject(account_id="ACC-7"),
        analysis_results=AnalysisBody(
            scores={"customer_health": health, "churn_risk": risk},
            score_details={"customer_health": ScoreDetail(score=health, band=band)},
        ),
        risk_mitigations=["call the customer"],
    )


def test_each_analysis_is_kept_with_its_time_oldest_first(store: Store) -> None:
    history = AnalysisHistory(store)
    for day, (health, risk) in enumerate([(80, 20), (60, 40), (30, 70)]):
        recorded = history.record(
            consumption(f"r{day}", health, risk, "x"), analyzed_at=DAY + timedelta(days=day)
        )
        assert recorded
    entries = history.for_account("ACC-7")
    assert [e.scores["churn_risk"] for e in entries] == [20, 40, 70]
    assert [e.analyzed_at for e in entries] == [DAY + timedelta(days=d) for d in range(3)]
    assert [e.headline_score for e in entries] == [80, 60, 30]
    assert history.for_account("ACC-7", limit=2)[0].request_id == "r1"  # the newest two
    assert history.for_account("ACC-8") == []


def test_a_redelivered_analysis_is_recorded_once(store: Store) -> None:
    history = AnalysisHistory(store)
    assert history.record(consumption("r1", 80, 20, "Healthy"), analyzed_at=DAY)
    assert not history.record(consumption("r1", 10, 90, "Critical"), analyzed_at=DAY)
    (entry,) = history.for_account("ACC-7")
    assert entry.headline_score == 80 and entry.headline_band == "Healthy"


def test_the_latest_analysis_is_the_newest_even_when_an_older_one_arrives_late(
    store: Store,
) -> None:
    history = AnalysisHistory(store)
    history.record(consumption("new", 30, 70, "At risk"), analyzed_at=DAY + timedelta(days=2))
    history.record(consumption("old", 90, 10, "Healthy"), analyzed_at=DAY)
    latest = history.latest_result("consumption", "ACC-7")
    assert latest is not None and latest.request_id == "new"
    assert latest.risk_mitigations == ["call the customer"]  # the whole analysis, as decided
    assert [e.request_id for e in history.for_account("ACC-7")] == ["old", "new"]
    with store.reader() as conn:
        row = conn.execute("SELECT * FROM revops_ai_latest_analysis").fetchone()
    assert (row["request_id"], row["headline_score"], row["headline_band"]) == (
        "new",
        30,
        "At risk",
    )


def test_the_execution_agent_records_each_decision_in_the_history(
    store: Store, routing: RoutingRules
) -> None:
    agent = ExecutionAgent(store, routing)
    first = make_analysis("req-a", flags=[make_flag()])
    second = make_analysis("req-b", flags=[make_flag()])
    agent.handle_decision(first, received_at=DAY)
    agent.handle_decision(second, received_at=DAY + timedelta(hours=1))
    agent.handle_decision(first, received_at=DAY)  # redelivery: no second row
    entries = agent.history.for_opportunity("OPP-1")
    assert [e.request_id for e in entries] == ["req-a", "req-b"]
    assert entries[0].headline_score == 58 and entries[0].headline_band == "at_risk"
    result = agent.history.result("req-b")
    assert result is not None and result.analysis_results.flags[0].code == "missing_data_flag"
