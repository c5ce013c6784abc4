"""Hand-made datasets for deal-quality tests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from contracts.dataset import Account, Call, Contact, Dataset, Opportunity, StageChange

AS_OF = date(2024, 6, 1)
MEDDPICC_COMPLETE: dict[str, Any] = {
    "metrics": "Cut dashboard latency from 20 s to 500 ms",
    "metrics_status": "Validated",
    "economic_buyer": "Dana Lee, CFO",
    "economic_buyer_status": "Validated",
    "decision_criteria": "Sub-second p95 at 200 users",
    "decision_criteria_status": "Identified",
    "decision_making_process": "CTO approves, CFO signs",
    "decision_making_process_status": "Identified",
    "paper_process": "Legal review 2 weeks, then procurement",
    "paper_process_status": "Identified",
    "identify_pain": "Snowflake cost is too high and queries are slow",
    "identify_pain_status": "Validated",
    "champion": "Sam Park, VP Data",
    "champion_status": "Validated",
    "competition": "Incumbent warehouse",
    "competition_status": "Identified",
}


def account(**overrides: Any) -> Account:
    values: dict[str, Any] = {
        "sf_account_id": "A1",
        "sf_account_name": "Acme Analytics",
        "sf_industry": "Software",
        "sf_company_domain": "acme.com",
        "employee_count": 450,
        "annual_revenue_usd": 120_000_000,
        "cloud_provider": "AWS",
    }
    values.update(overrides)
    return Account(**values)


def opportunity(**overrides: Any) -> Opportunity:
    values: dict[str, Any] = {
        "opportunity_id": "O1",
        "name": "Acme - New Business",
        "sf_account_id": "A1",
        "stage_name": "Negotiate",
        "amount": 360_000,
        "contract_duration_months": 12,
        "probability": 75,
        "close_date": date(2024, 7, 15),
        "owner_id": "U1",
        "next_step": "Send order form",
        "use_case": "Customer-facing analytics",
        "expected_data_volume_tb": 12,
        "expected_concurrent_users": 200,
        "latency_requirement_ms": 500,
        **MEDDPICC_COMPLETE,
    }
    values.update(overrides)
    return Opportunity(**values)


def contacts() -> list[Contact]:
    return [
        Contact(
            contact_id="K1", name="Dana Lee", email="dana@acme.com", title="CFO", sf_account_id="A1"
        ),
        Contact(
            contact_id="K2",
            name="Sam Park",
            email="sam@acme.com",
            title="VP Data",
            sf_account_id="A1",
        ),
        Contact(
            contact_id="K3",
            name="Ira Kim",
            email="ira@acme.com",
            title="Data Engineer",
            sf_account_id="A1",
        ),
    ]


def call(
    call_id: str, day: date, brief: str, emails: list[str] | None = None, **extra: Any
) -> Call:
    return Call(
        call_id=call_id,
        title=extra.pop("title", "Acme sync"),
        start_ts=datetime(day.year, day.month, day.day, 15, 0),
        participant_emails=emails if emails is not None else ["sam@acme.com", "ae@firebolt.io"],
        sf_account_id="A1",
        opportunity_id="O1",
        brief=brief,
        **extra,
    )


def healthy_calls() -> list[Call]:
    return [
        call(
            "C1",
            date(2024, 4, 2),
            "Discovery: dashboards need sub-second latency for 200 concurrent users.",
        ),
        call(
            "C2",
            date(2024, 4, 20),
            "Technical deep dive on dbt and Kafka integrations, 12 TB of data.",
            ["sam@acme.com", "ira@acme.com"],
        ),
        call(
            "C3",
            date(2024, 5, 10),
            "POC results reviewed with the CFO; pricing discussed.",
            ["sam@acme.com", "dana@acme.com"],
            next_steps="Send order form to legal",
        ),
        call(
            "C4",
            date(2024, 5, 28),
            "Procurement kickoff, legal review scheduled.",
            ["dana@acme.com", "sam@acme.com"],
        ),
    ]


def stage_history() -> list[StageChange]:
    stages = ["Opportunity Created", "Discover", "Proof of Concept", "Propose", "Negotiate"]
    changes = []
    for i, (before, after) in enumerate(zip([None, *stages], stages, strict=False)):
        changes.append(
            StageChange(
                opportunity_id="O1",
                from_stage=before,
                to_stage=after,
                started_at_ts=datetime(2024, 3, 1 + i * 5),
            )
        )
    return changes


def dataset(**overrides: Any) -> Dataset:
    values: dict[str, Any] = {
        "account": account(),
        "opportunity": opportunity(),
        "contacts": contacts(),
        "calls": healthy_calls(),
        "stage_history": stage_history(),
        "as_of": AS_OF,
    }
    values.update(overrides)
    return Dataset(**values)
