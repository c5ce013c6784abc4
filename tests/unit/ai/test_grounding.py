"""Grounding with planted fabrications: quotes that are not in the call, ids that do not
exist, numbers the analysis never had. Each is dropped and counted; the rest is kept."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from contracts.analysis import (
    AnalysisBody,
    AnalysisResults,
    CallInsightKind,
    Flag,
    FlagType,
    InsightCategory,
    Recommendation,
    ScoreDetail,
    ScoreFactor,
)
from contracts.common import AnalysisType, Evidence, Priority, Severity, Subject
from contracts.dataset import Call
from services.decision_agent.ai.call_reader import CallPerson, CompetitorNames, ground_call
from services.decision_agent.ai.facts import narrative_facts
from services.decision_agent.ai.grounding import FactIndex, Rejections, quote_occurs
from services.decision_agent.ai.narrator import apply_narrative, ground_narrative
from services.decision_agent.ai.outputs import CallUnderstanding, Narrative
from services.decision_agent.conversation.lexicon import LexiconExtractor

CALL = Call(
    call_id="call-001",
    title="Technical deep dive",
    start_ts=datetime(2026, 10, 1, 15, tzinfo=UTC),
    participant_emails=["dana@acme.io", "ae@vendor.example"],
    brief="Acme reviewed latency needs for the customer dashboard.",
    next_steps="Send over the POC plan by Friday.",
    transcript=(
        "Dana: Our dashboards take eight seconds under load and customers complain.\n"
        "Dana: Honestly we are evaluating Snowflake too, and the budget is frozen until Q3.\n"
        "AE: Understood. Shall we set up a POC?\n"
        "Dana: Yes, let's schedule it for next week."
    ),
)
PEOPLE = [CallPerson("dana@acme.io", "VP Data")]


def rejections_total(prompt: str, check: str) -> float:
    labels = {"prompt": prompt, "check": check}
    return REGISTRY.get_sample_value("revops_model_grounding_rejections_total", labels) or 0.0


def competitor_names() -> CompetitorNames:
    return CompetitorNames(LexiconExtractor.from_file().lexicon.competitors)


def test_quotes_are_matched_ignoring_case_whitespace_and_typography() -> None:
    texts = [CALL.transcript]
    assert quote_occurs("honestly WE are   evaluating snowflake", texts)
    assert quote_occurs("\u201cthe budget is frozen until Q3\u201d", texts)
    assert quote_occurs("...customers complain...", texts)
    assert not quote_occurs("the budget is frozen until Q4", texts)
    assert not quote_occurs("we are evaluating ... frozen", texts)  # not contiguous
    assert not quote_occurs("Dana", texts)  # too short to prove anything


@given(st.data())
def test_any_long_enough_span_of_the_call_is_grounded(data: st.DataObject) -> None:
    text = CALL.transcript or ""
    start = data.draw(st.integers(0, len(text) - 10))
    end = data.draw(st.integers(start + 10, len(text)))
    span = text[start:end]
    if len(" ".join(span.split())) >= 8:
        assert quote_occurs(span.upper(), [text])


def test_call_claims_with_fabricated_quotes_stakeholders_and_labels_are_dropped() -> None:
    answer = CallUnderstanding.model_validate(
        {
            "objections": [
                {"label": "no_budget", "quote": "the budget is frozen until Q3"},
                {"label": "lock_in", "quote": "we are worried about being locked in"},  # planted
                {"label": "too_pricey", "quote": "the budget is frozen until Q3"},  # planted
            ],
            "competitors": [
                {"label": "Snowflake", "quote": "we are evaluating Snowflake too"},
                {"label": "Redshift", "quote": "we moved off Redshift last year"},  # planted
            ],
            "technical_requirements": [
                {"label": "latency", "quote": "dashboards take eight seconds under load"}
            ],
            "stakeholders": [
                {
                    "email": "Dana@Acme.io",
                    "role": "technical",
                    "stance": "champion",
                    "quote": "let's schedule it for next week",
                },
                {  # planted: nobody of that name was on the call
                    "email": "cfo@acme.io",
                    "role": "economic_buyer",
                    "stance": "blocker",
                    "quote": "the budget is frozen until Q3",
                },
            ],
            "next_steps": [
                {"action": "POC plan", "quote": "Send over the POC plan by Friday."},
                {"action": "Pricing call", "quote": "We will book a pricing call"},  # planted
            ],
        }
    )
    before = {
        check: rejections_total("call_understanding", check)
        for check in ("quote_not_in_call", "unknown_stakeholder", "unknown_label")
    }
    rejections = Rejections("call_understanding")
    insights = ground_call(CALL, answer, PEOPLE, competitor_names(), rejections)
    kept = {(i.kind, i.label) for i in insights}
    assert kept == {
        (CallInsightKind.OBJECTION, "no_budget"),
        (CallInsightKind.COMPETITOR, "snowflake"),
        (CallInsightKind.TECHNICAL_REQUIREMENT, "latency"),
        (CallInsightKind.STAKEHOLDER, "technical"),
        (CallInsightKind.NEXT_STEP, "next_step"),
    }
    assert all(i.call_id == "call-001" for i in insights)
    stakeholder = next(i for i in insights if i.kind == CallInsightKind.STAKEHOLDER)
    assert (stakeholder.stakeholder, stakeholder.stance) == ("dana@acme.io", "champion")
    assert sorted(r.check for r in rejections.items) == [
        "quote_not_in_call",
        "quote_not_in_call",
        "quote_not_in_call",
        "unknown_label",
        "unknown_stakeholder",
    ]
    assert rejections_total("call_understanding", "quote_not_in_call") == (
        before["quote_not_in_call"] + 3
    )
    assert rejections_total("call_understanding", "unknown_stakeholder") == (
        before["unknown_stakeholder"] + 1
    )


def test_competitor_names_follow_the_lexicon() -> None:
    names = competitor_names()
    assert names("Google BigQuery") == "bigquery"
    assert names("Click House") == "clickhouse"
    assert names("SingleStore DB") == "singlestore_db"


def analysis() -> AnalysisResults:
    evidence = Evidence(source="gong_call_f", ref="call-001", date="2026-10-01", snippet="frozen")
    return AnalysisResults(
        request_id="r1",
        analysis_type=AnalysisType.DEAL_QUALITY,
        subject=Subject(account_id="001A", opportunity_id="006B", opportunity_name="Acme - New"),
        analysis_results=AnalysisBody(
            scores={"deal_quality": 59, "deal_health": 45},
            score_details={
                "deal_health": ScoreDetail(
                    score=45,
                    band="At Risk",
                    factors=[
                        ScoreFactor(
                            factor="budget",
                            points=0,
                            possible=7,
                            explanation="no budget confirmed",
                            evidence=[evidence],
                        ),
                        ScoreFactor(factor="poc", points=10, possible=10),
                    ],
                ),
                "deal_quality": ScoreDetail(score=59, band="Moderate"),
            },
            flags=[
                Flag(
                    type=FlagType.RISK,
                    severity=Severity.HIGH,
                    description="Competitor named: snowflake",
                    code="competitor_named",
                    category=InsightCategory.DEAL_QUALITY,
                    insight_type="competitive_threat",
                    evidence=[evidence],
                ),
                Flag(
                    type=FlagType.OPPORTUNITY,
                    severity=Severity.MEDIUM,
                    description="Late stage",
                    code="late_stage",
                    category=InsightCategory.DEAL_QUALITY,
                    insight_type="icp_alignment",
                ),
            ],
        ),
        recommendations=[
            Recommendation(
                id="rec-1",
                priority=Priority.HIGH,
                action="competitive_plan",
                description="Build a plan against snowflake",
                assignee="account_executive",
                based_on=["competitor_named"],
            ),
            Recommendation(
                id="rec-2",
                priority=Priority.LOW,
                action="fill_missing_data",
                description="Fill the missing CRM data",
                assignee="revops",
            ),
        ],
        risk_mitigations=["Run a benchmark on the customer's own data"],
        summary="Acme - New: deal quality 59/100 (Moderate); 1 risk(s), 1 critical/high",
    )


def test_numbers_must_come_from_the_analysis() -> None:
    facts = FactIndex(narrative_facts(analysis()))
    assert facts.unsupported("Deal quality is 59/100 and health 45 (At Risk).") == []
    assert facts.unsupported("Last call on 2026-10-01 (call-001); 1 high risk.") == []
    assert facts.unsupported("Win probability is 73%.") == ["73%"]
    assert facts.unsupported("Budget of $250,000 expected by 2026-12-15.") == [
        "2026-12-15",
        "250,000",
    ]
    assert facts.unsupported("See call-777 and rec-9.") == ["call-777", "rec-9"]


def test_narrative_claims_with_fabrications_are_dropped_and_the_rest_applied() -> None:
    result = analysis()
    answer = Narrative.model_validate(
        {
            "summary": (
                "Acme - New sits at 59/100 with deal health 45 (At Risk). "
                "The CFO promised a 250,000 budget by 2026-12-15. "  # planted numbers
                "Snowflake is the main threat; build the competitive plan now."
            ),
            "recommendations": [
                {"id": "rec-1", "description": "Book a benchmark against Snowflake this month"},
                {"id": "rec-9", "description": "Invent a recommendation"},  # planted id
                {"id": "rec-2", "description": "Fill the 12 missing fields"},  # planted number
            ],
            "mitigations": [
                {"based_on": "competitor_named", "text": "Benchmark on the customer's data"},
                {"based_on": "late_stage", "text": "Not a risk flag"},  # opportunity, not risk
                {"based_on": "no_such_flag", "text": "Made up"},  # planted code
            ],
        }
    )
    rejections = Rejections("deal_narrative")
    grounded = ground_narrative(answer, narrative_facts(result), result, rejections)
    narrated, parts, replaced = apply_narrative(result, grounded)
    assert narrated.summary == (
        "Acme - New sits at 59/100 with deal health 45 (At Risk). "
        "Snowflake is the main threat; build the competitive plan now."
    )
    assert [r.description for r in narrated.recommendations] == [
        "Book a benchmark against Snowflake this month",
        "Fill the missing CRM data",  # its wording was dropped: the deterministic text stays
    ]
    assert narrated.risk_mitigations == ["Benchmark on the customer's data"]
    assert parts == ["summary", "recommendations.rec-1.description", "risk_mitigations"]
    assert replaced == {
        "summary": result.summary,
        "recommendations.rec-1.description": "Build a plan against snowflake",
        "risk_mitigations.0": "Run a benchmark on the customer's own data",
    }
    assert sorted(r.check for r in rejections.items) == [
        "not_in_analysis",
        "not_in_analysis",
        "unknown_flag",
        "unknown_flag",
        "unknown_recommendation",
    ]
    # Nothing the model wrote can touch a score, a flag or who does what.
    assert narrated.analysis_results == result.analysis_results
    assert [(r.id, r.action, r.priority, r.assignee) for r in narrated.recommendations] == [
        (r.id, r.action, r.priority, r.assignee) for r in result.recommendations
    ]


def test_a_narrative_with_nothing_grounded_changes_nothing() -> None:
    result = analysis()
    answer = Narrative(summary="Close rate will be 91% by 2027-01-01.")
    grounded = ground_narrative(
        answer, narrative_facts(result), result, Rejections("deal_narrative")
    )
    narrated, parts, replaced = apply_narrative(result, grounded)
    assert (narrated, parts, replaced) == (result, [], {})


@given(
    st.lists(
        st.floats(min_value=-1e7, max_value=1e7, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=30,
    ),
    st.data(),
)
def test_every_fact_number_is_supported_as_written_or_rounded(
    values: list[float], data: st.DataObject
) -> None:
    index = FactIndex({"values": values})
    value = data.draw(st.sampled_from(values))
    digits = data.draw(st.integers(0, 3))
    assert index.unsupported(f"{value:,.{digits}f}") == []
    assert index.unsupported(f"{abs(value):.{digits}f}") == []
    if abs(value) <= 1:
        assert index.unsupported(f"{value:.{digits}%}") == []  # a ratio as a percentage


@given(st.integers(min_value=0, max_value=10**6))
def test_a_number_the_facts_lack_is_unsupported(planted: int) -> None:
    facts = {"scores": [10, 20, 30], "ratio": 0.5}
    index = FactIndex(facts)
    # 0.5 rounds to 0 or 1; as a percentage it is 50 (and each score x 100 is a percentage too)
    supported = {10, 20, 30, 50, 0, 1, 1000, 2000, 3000}
    text = f"It is {planted} now"
    assert (index.unsupported(text) == []) == (planted in supported)
