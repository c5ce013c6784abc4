"""Golden behaviour of the deal-quality analysis on hand-made datasets."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from contracts.analysis import AnalysisResults, FlagType
from contracts.dataset import Dataset, StageChange
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer
from tests.unit.deal_quality import builders


def flag_codes(result: AnalysisResults) -> set[str]:
    return {f.code for f in result.analysis_results.flags}


def flag(result: AnalysisResults, code: str):
    return next(f for f in result.analysis_results.flags if f.code == code)


def test_healthy_deal_scores_well_and_has_all_scores(analyzer: DealQualityAnalyzer) -> None:
    result = analyzer.analyze("r1", builders.dataset())
    scores = result.analysis_results.scores
    assert set(scores) == {
        "deal_quality",
        "data_completeness",
        "technical_fit",
        "icp_fit",
        "deal_health",
    }
    assert scores["data_completeness"] == 100
    assert scores["technical_fit"] >= 90
    assert scores["deal_quality"] >= 75
    assert result.subject.opportunity_id == "O1"
    assert result.analysis_type == "deal_quality"
    assert "zero_customer_calls" not in flag_codes(result)
    assert {"executive_champion", "strong_engagement", "late_stage"} <= flag_codes(result)
    for name, detail in result.analysis_results.score_details.items():
        assert detail.score == scores[name]
        assert all(0 <= f.points <= f.possible for f in detail.factors)


def test_deal_without_customer_calls_gets_zero_calls_risk(analyzer: DealQualityAnalyzer) -> None:
    result = analyzer.analyze("r1", builders.dataset(calls=[]))
    zero = flag(result, "zero_customer_calls")
    assert zero.type == FlagType.RISK
    assert zero.severity in ("high", "critical")
    gaps = flag(result, "data_gaps")
    assert any(e.value == "no_customer_calls" for e in gaps.evidence)
    engagement = {f.factor: f for f in result.analysis_results.score_details["deal_health"].factors}
    assert engagement["engagement.call_frequency"].points == 0
    assert any(r.action == "schedule_discovery_call" for r in result.recommendations)


def test_snowflake_on_a_call_is_a_competitive_threat_with_that_call(
    analyzer: DealQualityAnalyzer,
) -> None:
    calls = [
        *builders.healthy_calls(),
        builders.call("C9", date(2024, 5, 30), "They are also evaluating Snowflake for this."),
    ]
    result = analyzer.analyze("r1", builders.dataset(calls=calls))
    threat = flag(result, "competitor_named")
    assert threat.insight_type == "competitive_threat"
    assert "Snowflake" in threat.description
    call_evidence = [e for e in threat.evidence if e.source == "gong_call_f"]
    assert [e.ref for e in call_evidence] == ["C9"]
    assert "Snowflake" in (call_evidence[0].snippet or "")
    assert call_evidence[0].date == "2024-05-30"


def test_negotiate_with_empty_paper_process_loses_exactly_those_points(
    analyzer: DealQualityAnalyzer,
) -> None:
    full = analyzer.analyze("r1", builders.dataset())
    empty = analyzer.analyze(
        "r1",
        builders.dataset(
            opportunity=builders.opportunity(paper_process=None, paper_process_status=None)
        ),
    )
    full_factors = {
        f.factor: f for f in full.analysis_results.score_details["data_completeness"].factors
    }
    empty_factors = {
        f.factor: f for f in empty.analysis_results.score_details["data_completeness"].factors
    }
    lost = full_factors["required:paper_process"].points
    # Negotiate requires 2 base fields + 8 MEDDPICC fields sharing 70 points.
    assert lost == pytest.approx(70 / 10)
    assert empty_factors["required:paper_process"].points == 0
    changed = {k for k in full_factors if full_factors[k].points != empty_factors[k].points}
    assert changed == {"required:paper_process"}
    assert full.analysis_results.scores["data_completeness"] - empty.analysis_results.scores[
        "data_completeness"
    ] == round(lost)


def test_earlier_stage_does_not_require_paper_process(analyzer: DealQualityAnalyzer) -> None:
    result = analyzer.analyze(
        "r1",
        builders.dataset(opportunity=builders.opportunity(stage_name="Discover", probability=10)),
    )
    factors = {f.factor for f in result.analysis_results.score_details["data_completeness"].factors}
    assert "required:paper_process" not in factors
    assert "required:decision_making_process" not in factors
    assert "required:metrics" in factors


def test_negotiate_without_economic_buyer_on_calls_contradicts_crm(
    analyzer: DealQualityAnalyzer,
) -> None:
    calls = [
        builders.call(
            "C1", date(2024, 5, 20), "Weekly check-in on dbt integration.", ["ira@acme.com"]
        )
    ]
    result = analyzer.analyze("r1", builders.dataset(calls=calls))
    contradiction = flag(result, "calls_contradict_stage")
    assert contradiction.severity == "critical"
    assert "Negotiate" in contradiction.description
    assert result.recommendations[0].action == "meet_economic_buyer"
    assert result.recommendations[0].id == "rec-1"


def test_stale_calls_slipped_close_and_regression(analyzer: DealQualityAnalyzer) -> None:
    history = [
        *builders.stage_history(),
        StageChange(
            opportunity_id="O1",
            from_stage="Negotiate",
            to_stage="Propose",
            started_at_ts=datetime(2024, 4, 1),
        ),
    ]
    data = builders.dataset(
        calls=builders.healthy_calls()[:2],
        stage_history=history,
        opportunity=builders.opportunity(
            stage_name="Propose", probability=50, close_date=date(2024, 5, 1)
        ),
    )
    result = analyzer.analyze("r1", data)
    codes = flag_codes(result)
    assert {"no_recent_customer_call", "close_date_slipped", "stage_regression"} <= codes
    regression = flag(result, "stage_regression")
    assert regression.category == "pipeline_health"
    assert regression.evidence[0].date == "2024-04-01"
    assert "2024-04-20" in flag(result, "no_recent_customer_call").description


def test_missing_optional_parts_never_crash(analyzer: DealQualityAnalyzer) -> None:
    bare = Dataset(
        account=builders.account(employee_count=None, sf_industry=None, cloud_provider=None)
    )
    result = analyzer.analyze("r1", bare)
    assert set(result.analysis_results.scores) >= {"deal_quality", "icp_fit"}
    assert "data_gaps" in flag_codes(result)
    assert "no_contacts" in flag_codes(result)
    no_contacts = analyzer.analyze("r1", builders.dataset(contacts=[]))
    coverage = {f.factor: f for f in no_contacts.analysis_results.score_details["icp_fit"].factors}
    assert coverage["relationship.contact_coverage"].points == 0
    assert "no_contacts" in flag_codes(no_contacts)


def test_recommendations_are_ordered_and_numbered(analyzer: DealQualityAnalyzer) -> None:
    data = builders.dataset(
        calls=[],
        opportunity=builders.opportunity(
            economic_buyer=None, economic_buyer_status="No Assessment"
        ),
    )
    result = analyzer.analyze("r1", data)
    ids = [r.id for r in result.recommendations]
    assert ids == [f"rec-{i}" for i in range(1, len(ids) + 1)]
    ranks = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    order = [ranks[r.priority] for r in result.recommendations]
    assert order == sorted(order)
    assert all(
        r.assignee in {"account_executive", "solutions_engineering", "sales_leadership", "revops"}
        for r in result.recommendations
    )
    assert result.summary.startswith("Acme - New Business: deal quality")


def test_same_input_same_output(analyzer: DealQualityAnalyzer) -> None:
    first = analyzer.analyze("r1", builders.dataset())
    second = analyzer.analyze("r1", builders.dataset())
    assert first.model_dump_json() == second.model_dump_json()
