"""Results built without validation (services.decision_agent.trusted) equal their validated copies.

``model_validate(result.model_dump())`` re-validates every nested model from plain values: it
equals the result only if every field holds what validation would have produced. ``repr``
adds what ``==`` and JSON cannot see (an int where a float is declared compares equal and
serialises as a float, but validation would have made it a float), and strict validation
refuses any value of the wrong type.

(A JSON-mode round trip cannot be compared with ``==``: ``Evidence.value`` is ``Any`` and
holds a ``date`` for date fields, which comes back from JSON as a string, validated or not.)
"""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings

from contracts.analysis import (
    AnalysisResults,
    Flag,
    FlagType,
    InsightCategory,
    Recommendation,
    ScoreDetail,
    ScoreFactor,
)
from contracts.common import AnalysisType, Evidence, Priority, Severity, Subject
from contracts.dataset import Dataset
from services.decision_agent import trusted
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer
from tests.unit.deal_quality import builders
from tests.unit.deal_quality.test_properties import datasets


def assert_equals_validated(result: AnalysisResults) -> None:
    validated = AnalysisResults.model_validate(result.model_dump())
    assert validated == result
    assert repr(validated) == repr(result)
    assert validated.model_dump_json() == result.model_dump_json()
    assert AnalysisResults.model_validate(result.model_dump(), strict=True) == result
    from_json = AnalysisResults.model_validate_json(result.model_dump_json())
    assert from_json.model_dump_json() == result.model_dump_json()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(datasets())
def test_generated_deal_results_equal_validated(
    analyzer: DealQualityAnalyzer, data: Dataset
) -> None:
    assert_equals_validated(analyzer.analyze("r", data))


def test_handmade_deals_equal_validated(analyzer: DealQualityAnalyzer) -> None:
    variants = [
        builders.dataset(),
        builders.dataset(calls=[], contacts=[]),
        builders.dataset(opportunity=None),
        builders.dataset(opportunity=builders.opportunity(stage_name="Nowhere", amount=None)),
        builders.dataset(account=builders.account(employee_count=None, sf_industry=None)),
    ]
    for data in variants:
        assert_equals_validated(analyzer.analyze("r", data))


def test_each_builder_matches_the_validating_constructor() -> None:
    ev = trusted.evidence("opportunity_d", "O1", "close_date", value=date(2024, 7, 15))
    assert ev == Evidence(
        source="opportunity_d", ref="O1", field="close_date", value=date(2024, 7, 15)
    )
    factor = trusted.score_factor("a.b", 1.5, 3.0, "why", [ev])
    assert factor == ScoreFactor(
        factor="a.b", points=1.5, possible=3.0, explanation="why", evidence=[ev]
    )
    detail = trusted.score_detail(50, "Fair", [factor])
    assert detail == ScoreDetail(score=50, band="Fair", factors=[factor])
    found = trusted.flag(
        FlagType.RISK, Severity.LOW, "d", "c", InsightCategory.DEAL_QUALITY, "missing_data", 1.0, []
    )
    assert found == Flag(
        type="risk",
        severity="low",
        description="d",
        code="c",
        category="deal_quality",
        insight_type="missing_data",
        confidence=1.0,
    )
    rec = trusted.recommendation("rec-1", Priority.HIGH, "act", "do it", [ev], "revops", ["c"])
    assert rec == Recommendation(
        id="rec-1",
        priority="high",
        action="act",
        description="do it",
        evidence=[ev],
        assignee="revops",
        based_on=["c"],
    )
    subject = trusted.subject("A1", None)
    assert subject == Subject(account_id="A1", opportunity_id=None)
    body = trusted.analysis_body({"x": 50}, {"x": detail}, [found])
    result = trusted.analysis_results(
        "r", AnalysisType.DEAL_QUALITY, subject, body, [rec], ["t"], ["m"], "s"
    )
    assert result == AnalysisResults(
        request_id="r",
        analysis_type="deal_quality",
        subject=Subject(account_id="A1", opportunity_id=None),
        analysis_results={"scores": {"x": 50}, "score_details": {"x": detail}, "flags": [found]},
        recommendations=[rec],
        conversation_topics=["t"],
        risk_mitigations=["m"],
        summary="s",
    )
    assert result.requested_at is None and "requested_at" not in result.model_fields_set
    # Results stay ordinary mutable models: assignment validates and marks the field set.
    factor.points = 2.0
    assert factor.points == 2.0 and "points" in factor.model_fields_set


def test_results_do_not_share_lists(analyzer: DealQualityAnalyzer) -> None:
    result = analyzer.analyze("r", builders.dataset(calls=[]))
    flags = {f.code: f for f in result.analysis_results.flags}
    for rec in result.recommendations:
        for code in rec.based_on:
            if code in flags:
                assert rec.evidence is not flags[code].evidence


def test_shared_fields_set_stays_right_when_a_result_is_changed() -> None:
    """Trusted builders share one all-fields set per model; assigning a field (pydantic adds
    its name to the set) or copying a result must not change what any other result reports."""
    first = trusted.evidence("opportunity_d", "O1", "amount", value=1.0)
    second = trusted.evidence("contact_d", "C1", "title", value="CTO")
    all_fields = set(Evidence.model_fields)
    first.snippet = "edited"
    copied = first.model_copy(update={"ref": "O2"})
    assert first.model_fields_set == second.model_fields_set == all_fields
    assert copied.model_fields_set == all_fields
    assert second.snippet is None
    assert second.model_dump(exclude_unset=True) == Evidence(
        source="contact_d", ref="C1", field="title", value="CTO"
    ).model_dump(exclude_unset=False)
