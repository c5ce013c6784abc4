"""Renewal risk: the next renewal within 90 days, its risk from spend against commitment,
usage trend, health, open tickets and executive engagement, and the motion it calls for;
the alerts it routes render with the real templates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from contracts import AnalysisType
from contracts.analysis import FlagType, InsightCategory
from contracts.dataset import (
    Account,
    Agreement,
    Call,
    Contact,
    CustomerClass,
    Dataset,
    SupportTicket,
    UsageDay,
)
from services.common.rulefiles import RuleFileError
from services.common.settings import PROJECT_ROOT
from services.decision_agent.analyzers import build_analyzers
from services.decision_agent.renewal.analyzer import load_renewal_rules
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import ExecutionAgent
from services.execution_agent.store import Store
from services.webhook_processor.channels import Message, build
from services.webhook_processor.config_file import load_config
from services.webhook_processor.rendering import TemplateRenderer

RULES_DIR = PROJECT_ROOT / "services" / "decision_agent" / "rules"
DEMO_WEBHOOKS = PROJECT_ROOT / "services" / "webhook_processor" / "webhooks.demo.yaml"
AS_OF = date(2026, 6, 30)
MONTHLY_COMMIT = 30_000.0  # amount 360,000 over 12 months
CFO = "dana.cfo@acme.example"


@pytest.fixture(scope="module")
def analyzer():
    return build_analyzers(RULES_DIR)[AnalysisType.RENEWAL_RISK]


def usage(daily_cost: float, *, declining: bool = False, days: int = 180) -> list[UsageDay]:
    rows = []
    for i in range(days):
        day = AS_OF - timedelta(days=days - 1 - i)
        # A declining account spends 3x more in the first 150 days than in the last 30.
        scale = (3.0 if i < days - 30 else 1.0) if declining else 1.0
        rows.append(
            UsageDay(
                usage_date=day,
                query_count=1000 * scale,
                engine_hours=10 * scale,
                fbu=50 * scale,
                data_scanned_bytes=1e12 * scale,
                data_ingested_bytes=1e10 * scale,
                cost_usd=daily_cost * scale,
                active_users=8,
            )
        )
    return rows


def agreement(days_left: int, agreement_id: str = "AGR-1") -> Agreement:
    return Agreement(
        agreement_id=agreement_id,
        sf_account_id="ACC-1",
        amount=MONTHLY_COMMIT * 12,
        term_months=12,
        start_date=AS_OF + timedelta(days=days_left) - timedelta(days=365),
        end_date=AS_OF + timedelta(days=days_left),
    )


def executive_call(days_ago: int) -> Call:
    return Call(
        call_id=f"CALL-{days_ago}",
        title="Quarterly business review",
        start_ts=datetime.combine(AS_OF - timedelta(days=days_ago), datetime.min.time(), UTC),
        participant_emails=["ae@vendor.example", CFO],
        sf_account_id="ACC-1",
    )


def ticket(n: int, priority: str = "P1") -> SupportTicket:
    return SupportTicket(
        ticket_id=f"T-{n}",
        sf_account_id="ACC-1",
        priority=priority,
        status="Open",
        created_at_ts=datetime.combine(AS_OF - timedelta(days=5), datetime.min.time(), UTC),
    )


def dataset(
    *,
    days_left: int | None = 45,
    daily_cost: float = 1000.0,
    declining: bool = False,
    calls: list[Call] | None = None,
    tickets: list[SupportTicket] | None = None,
) -> Dataset:
    return Dataset(
        account=Account(
            sf_account_id="ACC-1",
            sf_account_name="Acme Analytics",
            sf_account_type_custom="Commit Customer",
            customer_class=CustomerClass.COMMIT,
        ),
        contacts=[
            Contact(contact_id="C-1", name="Dana", email=CFO, title="CFO", sf_account_id="ACC-1"),
            Contact(
                contact_id="C-2",
                name="Sam",
                email="sam@acme.example",
                title="Data engineer",
                sf_account_id="ACC-1",
            ),
        ],
        calls=calls or [],
        usage=usage(daily_cost, declining=declining),
        tickets=tickets or [],
        agreements=[] if days_left is None else [agreement(days_left)],
        as_of=AS_OF,
    )


def analyse(analyzer, data: Dataset):
    return analyzer.analyze("req-renewal", data, [])


def test_no_agreement_renewing_within_90_days_is_said_and_flags_nothing(analyzer) -> None:
    for data in (dataset(days_left=None), dataset(days_left=120)):
        result = analyse(analyzer, data)
        assert result.analysis_type is AnalysisType.RENEWAL_RISK
        assert result.analysis_results.flags == [] and result.analysis_results.scores == {}
        assert "renews within 90 days" in result.summary


@pytest.mark.parametrize(
    ("days_left", "phase"), [(10, "30 days"), (45, "60 days"), (80, "90 days")]
)
def test_the_phase_follows_the_days_left(analyzer, days_left: int, phase: str) -> None:
    result = analyse(analyzer, dataset(days_left=days_left, calls=[executive_call(10)]))
    assert f"({days_left} days, {phase})" in result.summary


def test_the_agreement_that_ends_first_is_the_one_reviewed(analyzer) -> None:
    data = dataset(days_left=80)
    data = data.model_copy(update={"agreements": [agreement(80), agreement(20, "AGR-2")]})
    result = analyse(analyzer, data)
    assert "agreement AGR-2 renews" in result.summary


def test_low_spend_decline_tickets_and_no_executive_is_an_executive_escalation(analyzer) -> None:
    data = dataset(
        daily_cost=300.0, declining=True, tickets=[ticket(1), ticket(2, "P2"), ticket(3)]
    )
    result = analyse(analyzer, data)
    detail = result.analysis_results.score_details["renewal_risk"]
    factors = {f.factor: f for f in detail.factors}
    assert factors["commitment"].points == factors["commitment"].possible  # 30 % of commitment
    assert factors["support"].points == factors["support"].possible  # 3 open P1/P2 tickets
    assert factors["executive_engagement"].points == factors["executive_engagement"].possible
    assert result.analysis_results.scores["renewal_risk"] >= 76 and detail.band == "Critical"
    [flag] = result.analysis_results.flags
    assert flag.code == "renewal_executive_escalation" and flag.severity == "critical"
    assert (flag.category, flag.insight_type) == (
        InsightCategory.CHURN_RISK,
        "contract_approaching",
    )
    [rec] = result.recommendations
    assert rec.based_on == [flag.code] and rec.assignee == "sales_leadership"
    assert {e.source for e in flag.evidence} >= {"agreement_f", "support_ticket_f"}


def test_the_same_risk_with_an_executive_on_a_recent_call_is_a_rescue(analyzer) -> None:
    data = dataset(
        daily_cost=300.0,
        declining=True,
        tickets=[ticket(1), ticket(2), ticket(3)],
        calls=[executive_call(5)],
    )
    result = analyse(analyzer, data)
    [flag] = result.analysis_results.flags
    assert flag.code == "renewal_rescue" and flag.severity == "high"
    engagement = next(
        f
        for f in result.analysis_results.score_details["renewal_risk"].factors
        if f.factor == "executive_engagement"
    )
    assert CFO in (engagement.explanation or "") and engagement.evidence[0].ref == "CALL-5"


def test_spend_above_the_commitment_with_low_risk_is_an_expansion(analyzer) -> None:
    result = analyse(analyzer, dataset(daily_cost=1300.0, calls=[executive_call(3)]))
    assert result.analysis_results.scores["renewal_risk"] < 51
    [flag] = result.analysis_results.flags
    assert flag.code == "renewal_expand" and flag.type is FlagType.OPPORTUNITY
    assert flag.category is InsightCategory.GROWTH_OPPORTUNITY
    assert "130%" in result.recommendations[0].description


def test_on_pace_and_engaged_is_renew_as_is(analyzer) -> None:
    result = analyse(analyzer, dataset(daily_cost=1000.0, calls=[executive_call(3)]))
    commitment = next(
        f
        for f in result.analysis_results.score_details["renewal_risk"].factors
        if f.factor == "commitment"
    )
    assert commitment.points == 0
    [flag] = result.analysis_results.flags
    assert flag.code == "renewal_renew_as_is" and flag.severity == "low"


def test_weights_that_do_not_add_up_are_refused_with_their_line(tmp_path: Path) -> None:
    text = (RULES_DIR / "renewal_risk.yaml").read_text()
    (tmp_path / "renewal_risk.yaml").write_text(text.replace("commitment: 30", "commitment: 35"))
    with pytest.raises(RuleFileError) as caught:
        load_renewal_rules(tmp_path)
    assert "weights add up to 105, not 100" in str(caught.value)
    assert "renewal_risk.yaml:" in str(caught.value)


def test_the_routed_alerts_render_with_the_renewal_templates(analyzer, tmp_path: Path) -> None:
    data = dataset(daily_cost=300.0, declining=True, tickets=[ticket(1), ticket(2), ticket(3)])
    result = analyse(analyzer, data)
    agent = ExecutionAgent(Store(tmp_path / "revops.db"), RoutingRules.load())
    outcome = agent.handle_decision(result, "flow", "corr", datetime(2026, 6, 30, 9, tzinfo=UTC))
    config, renderer = load_config(DEMO_WEBHOOKS), TemplateRenderer()
    assert {j.template for j in outcome.jobs} == {"renewal_alert"}
    assert {j.channel for j in outcome.jobs} == {"slack", "email", "ticket"}
    risk = str(result.analysis_results.scores["renewal_risk"])
    for job in outcome.jobs:
        spec = build(
            config.destinations[job.destination], Message.for_job(job, job.destination), renderer
        )
        email = getattr(spec, "message", None)
        text = repr(spec) + (email.as_string() if email is not None else "")
        assert "Acme Analytics" in text, job.channel
        assert f"isk {risk}" in text, job.channel  # "Renewal risk 82" / "renewal risk 82"
        assert "executive sponsor" in text, job.channel  # the recommended motion
