"""revops_ai_analysis_history: every analysis kept with its time; the newest per subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts import (
    AgentName,
    AnalysisBody,
    AnalysisResults,
    AnalysisType,
    Evidence,
    ScoreDetail,
    Subject,
)
from contracts.analysis import ScoreFactor
from services.common.messages import encode, envelope_parser, make_envelope
from services.common.records import Record
from services.execution_agent.app import decision_of
from services.execution_agent.history import AnalysisHistory, payload_json
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


def test_an_analysis_read_from_its_record_is_kept_as_its_model_writes_it(store: Store) -> None:
    """The history keeps the record's payload re-encoded (not the model serialised again):
    the text must be the model's own, floats, dates and nested evidence included."""
    evidence = Evidence(source="opportunity_d", ref="006A", field="amount", value=125000.5)
    dated = Evidence(source="gong_call_f", ref="call-9", date="2025-06-01", snippet="budget ok")
    factors = [
        ScoreFactor(factor="company.size", points=3.6, possible=6.0, evidence=[evidence]),
        ScoreFactor(factor="meddpicc.champion", points=0.1 + 0.2, possible=1e-7, evidence=[dated]),
    ]
    deal = make_analysis("r-deal", flags=[make_flag(severity="high")]).model_copy(
        update={"requested_at": DAY}
    )
    deal.analysis_results.score_details["deal_quality"] = ScoreDetail(
        score=58, band="at_risk", factors=factors
    )
    agent = ExecutionAgent(store, RoutingRules.load())
    parse = envelope_parser(AnalysisResults, AgentName.EXECUTION_AGENT.value)
    for analysis in (deal, consumption("r-health", 41, 59, "at_risk")):
        envelope = make_envelope(
            analysis,
            request_id=analysis.request_id,
            flow_id=f"flow-{analysis.request_id}",
            correlation_id=f"corr-{analysis.request_id}",
            source=AgentName.DECISION_AGENT.value,
            target=AgentName.EXECUTION_AGENT.value,
            stage="decision",
        )
        record = Record("revops.decisions", 0, 0, b"ACC-1", encode(envelope))
        decision = decision_of(parse(record))
        assert payload_json(decision.payload) == analysis.model_dump_json()
        [outcome] = agent.handle_decisions([("ACC-1", decision)])
        assert not isinstance(outcome, BaseException)
        with store.reader() as conn:
            [row] = conn.execute(
                "SELECT result FROM revops_ai_analysis_history WHERE request_id = ?",
                (analysis.request_id,),
            ).fetchall()
        assert row[0] == analysis.model_dump_json()
