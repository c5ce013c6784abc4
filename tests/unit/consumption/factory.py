"""Deterministic test accounts with known usage stories (weekends, holidays, events)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np

from bench.consumption_fleet.fleet import FleetColumns
from contracts.dataset import (
    Account,
    Agreement,
    Call,
    CustomerClass,
    Dataset,
    SupportTicket,
    UsageDay,
)
from services.decision_agent.consumption.inputs import USAGE_METRICS

AS_OF = date(2025, 6, 30)
DAYS = 240


def usage_days(
    seed: int,
    level: float,
    story: str,
    days: int = DAYS,
    users: float = 5,
    cost_factor: float = 1.0,
) -> list[UsageDay]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(days):
        day = AS_OF - timedelta(days=days - 1 - k)
        weekday = 1.0 if day.weekday() < 5 else 0.25
        age = k / days
        factor = {
            "stable": 1.0,
            "decline": 1.0 if k < days - 45 else 0.35,
            "stop": 1.0 if k < days - 40 else 0.0,
            "growth": 1.0 + 2.5 * age**2,
            "spike": 1.0 if k < days - 30 else 3.5,
            "cost": 1.0,
        }[story]
        q = level * weekday * factor * rng.lognormal(0, 0.1)
        cost = q * 0.05 * cost_factor * (4.0 if story == "cost" and k >= days - 30 else 1.0)
        out.append(
            UsageDay(
                usage_date=day,
                query_count=round(q),
                engine_hours=q / 100,
                fbu=q / 50,
                data_scanned_bytes=q * 1e6,
                data_ingested_bytes=q * 1e5,
                cost_usd=cost,
                active_users=users if q > 0 else 0,
            )
        )
    return out


def dataset(
    account_id: str,
    cls: CustomerClass,
    story: str,
    level: float = 10_000,
    seed: int = 1,
    users: float = 5,
    tickets: int = 0,
    renewal_in_days: int | None = 200,
    monthly_commit: float = 12_000,
    cost_factor: float = 1.0,
) -> Dataset:
    agreements = []
    if renewal_in_days is not None:
        agreements.append(
            Agreement(
                agreement_id=f"{account_id}-agr",
                sf_account_id=account_id,
                amount=monthly_commit * 12,
                term_months=12,
                start_date=AS_OF + timedelta(days=renewal_in_days - 365),
                end_date=AS_OF + timedelta(days=renewal_in_days),
            )
        )
    return Dataset(
        account=Account(
            sf_account_id=account_id,
            sf_account_name=account_id.upper(),
            customer_class=cls,
            created_at_ts=datetime(2024, 1, 1),
        ),
        opportunity=None,
        usage=usage_days(seed, level, story, users=users, cost_factor=cost_factor),
        tickets=[
            SupportTicket(
                ticket_id=f"{account_id}-t{k}",
                sf_account_id=account_id,
                priority="P1" if k % 2 else "P2",
                status="open",
                created_at_ts=datetime.combine(
                    AS_OF - timedelta(days=3 + 5 * k), datetime.min.time()
                ),
            )
            for k in range(tickets)
        ],
        agreements=agreements,
        calls=[
            Call(
                call_id=f"{account_id}-c1",
                title="QBR",
                start_ts=datetime(2025, 6, 20),
                sf_account_id=account_id,
            )
        ],
        as_of=AS_OF,
    )


def portfolio() -> list[Dataset]:
    return [
        dataset("acc-stable", CustomerClass.COMMIT, "stable", monthly_commit=15_000 * 0 + 10_000),
        dataset(
            "acc-decline", CustomerClass.COMMIT, "decline", seed=2, tickets=3, renewal_in_days=60
        ),
        dataset("acc-stop", CustomerClass.COMMIT, "stop", seed=3, renewal_in_days=25),
        dataset(
            "acc-growth", CustomerClass.PLG, "growth", seed=4, level=30_000, renewal_in_days=None
        ),
        dataset("acc-spike", CustomerClass.COMMIT, "spike", seed=5, monthly_commit=5_000),
        dataset("acc-cost", CustomerClass.COMMIT, "cost", seed=6),
        dataset(
            "acc-plg-single",
            CustomerClass.PLG,
            "stable",
            seed=7,
            level=500,
            users=1,
            renewal_in_days=None,
        ),
        dataset(
            "acc-trial", CustomerClass.PROSPECT, "decline", seed=8, level=200, renewal_in_days=None
        ),
    ]


def columns(datasets: list[Dataset]) -> FleetColumns:
    """The same facts as warehouse-style columns (what a DuckDB query returns)."""
    usage = [(d.account.sf_account_id, u) for d in datasets for u in d.usage]
    tickets = [t for d in datasets for t in d.tickets]
    agreements = [a for d in datasets for a in d.agreements]
    calls = [c for d in datasets for c in d.calls]
    return FleetColumns(
        account_ids=[d.account.sf_account_id for d in datasets],
        customer_class=[d.account.customer_class.value for d in datasets],
        created_at=[
            np.datetime64(d.account.created_at_ts.date())
            if d.account.created_at_ts
            else np.datetime64("NaT")
            for d in datasets
        ],
        has_opportunity=[d.opportunity is not None for d in datasets],
        usage_account=[a for a, _ in usage],
        usage_date=[np.datetime64(u.usage_date) for _, u in usage],
        usage_values=np.array([[getattr(u, m) for m in USAGE_METRICS] for _, u in usage]),
        ticket_account=[t.sf_account_id for t in tickets],
        ticket_id=[t.ticket_id for t in tickets],
        ticket_created=[np.datetime64(t.created_at_ts.date()) for t in tickets],
        ticket_priority=[t.priority for t in tickets],
        agreement_account=[a.sf_account_id for a in agreements],
        agreement_id=[a.agreement_id for a in agreements],
        agreement_start=[np.datetime64(a.start_date) for a in agreements],
        agreement_end=[np.datetime64(a.end_date) for a in agreements],
        agreement_amount=[a.amount for a in agreements],
        agreement_term_months=[a.term_months for a in agreements],
        agreement_active=[a.is_active for a in agreements],
        call_account=[c.sf_account_id or "" for c in calls],
        call_id=[c.call_id for c in calls],
        call_start=[np.datetime64(c.start_ts.date()) for c in calls],
    )
