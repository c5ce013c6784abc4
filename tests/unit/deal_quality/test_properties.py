"""Property tests: range, monotonic completeness, call-order independence."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.analysis import AnalysisResults
from contracts.dataset import Call, Dataset
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer
from services.decision_agent.deal_quality.rule_models import MEDDPICC_FIELDS
from tests.unit.deal_quality import builders

STAGES = [
    "Opportunity Created",
    "Discover",
    "Proof of Concept",
    "Propose",
    "Negotiate",
    "Signature",
    "Closed Won",
    "Closed Lost",
    "Unknown Stage",
]
STATUSES = [None, "No Assessment", "Partial Understanding", "Identified", "Validated", "Weird"]
PHRASES = [
    "Snowflake",
    "sub-second latency",
    "no budget",
    "dbt",
    "12 TB",
    "happy with Redshift",
    "next steps: send proposal",
    "lock-in",
    "200 concurrent users",
    "",
]

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def calls(draw: st.DrawFn) -> list[Call]:
    count = draw(st.integers(0, 6))
    emails = ["sam@acme.com", "dana@acme.com", "ira@acme.com", "x@other.org", "ae@firebolt.io"]
    result = []
    for i in range(count):
        day = date(2024, 1, 1) + timedelta(days=draw(st.integers(0, 200)))
        brief = " ".join(draw(st.lists(st.sampled_from(PHRASES), max_size=4)))
        result.append(
            builders.call(f"C{i}", day, brief, draw(st.lists(st.sampled_from(emails), max_size=4)))
        )
    return result


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    meddpicc = {}
    for name in MEDDPICC_FIELDS:
        meddpicc[name] = draw(st.sampled_from([None, "", "Some text"]))
        meddpicc[f"{name}_status"] = draw(st.sampled_from(STATUSES))
    opp = builders.opportunity(
        stage_name=draw(st.sampled_from(STAGES)),
        amount=draw(st.one_of(st.none(), st.floats(-10, 2_000_000))),
        probability=draw(st.one_of(st.none(), st.floats(0, 100))),
        close_date=draw(st.one_of(st.none(), st.dates(date(2023, 1, 1), date(2025, 1, 1)))),
        expected_data_volume_tb=draw(st.one_of(st.none(), st.floats(0, 100))),
        latency_requirement_ms=draw(st.one_of(st.none(), st.floats(1, 10_000))),
        **meddpicc,
    )
    return builders.dataset(
        opportunity=opp,
        calls=draw(calls()),
        contacts=draw(st.sampled_from([[], builders.contacts()])),
        account=builders.account(
            employee_count=draw(st.one_of(st.none(), st.integers(1, 100_000)))
        ),
        as_of=draw(st.one_of(st.none(), st.dates(date(2024, 1, 1), date(2024, 12, 31)))),
    )


@SETTINGS
@given(datasets())
def test_scores_stay_in_range(analyzer: DealQualityAnalyzer, data: Dataset) -> None:
    result = analyzer.analyze("r", data)
    wire = result.model_dump_json()
    assert AnalysisResults.model_validate_json(wire).model_dump_json() == wire
    for name, value in result.analysis_results.scores.items():
        assert 0 <= value <= 100, name
        detail = result.analysis_results.score_details[name]
        assert all(0 <= f.points <= f.possible + 1e-9 for f in detail.factors)


@SETTINGS
@given(datasets(), st.sampled_from(MEDDPICC_FIELDS), st.sampled_from(STATUSES))
def test_adding_a_missing_field_never_lowers_completeness(
    analyzer: DealQualityAnalyzer, data: Dataset, field: str, status: str | None
) -> None:
    assert data.opportunity is not None
    before_opp = data.opportunity.model_copy(update={field: None, f"{field}_status": None})
    after_opp = before_opp.model_copy(
        update={field: "Captured on a call", f"{field}_status": status}
    )
    before = analyzer.analyze("r", data.model_copy(update={"opportunity": before_opp}))
    after = analyzer.analyze("r", data.model_copy(update={"opportunity": after_opp}))
    key = "data_completeness"
    assert after.analysis_results.scores[key] >= before.analysis_results.scores[key]


@SETTINGS
@given(datasets(), st.randoms(use_true_random=False))
def test_shuffling_calls_changes_nothing(analyzer: DealQualityAnalyzer, data: Dataset, rnd) -> None:
    shuffled = list(data.calls)
    rnd.shuffle(shuffled)
    first = analyzer.analyze("r", data)
    second = analyzer.analyze("r", data.model_copy(update={"calls": shuffled}))
    assert first.model_dump_json() == second.model_dump_json()


def test_calls_at_same_time_are_ordered_by_id(analyzer: DealQualityAnalyzer) -> None:
    moment = datetime(2024, 5, 1, 10)
    a = builders.call("CA", moment.date(), "Snowflake", next_steps="first")
    b = builders.call("CB", moment.date(), "Snowflake", next_steps="second")
    one = analyzer.analyze("r", builders.dataset(calls=[a, b]))
    two = analyzer.analyze("r", builders.dataset(calls=[b, a]))
    assert one == two


@SETTINGS
@given(datasets(), st.sampled_from(["next_step", "close_date"]))
def test_adding_a_missing_base_field_never_lowers_completeness(
    analyzer: DealQualityAnalyzer, data: Dataset, field: str
) -> None:
    assert data.opportunity is not None
    value = "Book the demo" if field == "next_step" else date(2024, 1, 15)
    before_opp = data.opportunity.model_copy(update={field: None})
    after_opp = before_opp.model_copy(update={field: value})
    before = analyzer.analyze("r", data.model_copy(update={"opportunity": before_opp}))
    after = analyzer.analyze("r", data.model_copy(update={"opportunity": after_opp}))
    key = "data_completeness"
    assert after.analysis_results.scores[key] >= before.analysis_results.scores[key]
