"""CRM, Gong, support, contract rows for a chunk of accounts (Salesforce/Gong-like).

One Python pass per account and per deal (tens of rows each); usage, the only big table,
is vectorized in `usage.py`. Every injected case is recorded in the ground-truth entries
returned next to the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson
import pyarrow as pa

from demo import vocabulary as V
from demo.fastrandom import FastRandom
from services.data_agent.warehouse.schema import TABLES

ACCOUNT_TYPE = {"commit": "Commit Customer", "plg": "PLG Customer", "prospect": None}
PROSPECT_TYPES = (None, "Prospect", "Trial")
OPEN_STAGES = (
    "Opportunity Created",
    "Discover",
    "Proof of Concept",
    "Propose",
    "Negotiate",
    "Signature",
)
STAGE_SHARES = {
    "Opportunity Created": 0.08,
    "Discover": 0.12,
    "Proof of Concept": 0.12,
    "Propose": 0.10,
    "Negotiate": 0.08,
    "Signature": 0.05,
    "Closed": 0.45,  # split into Closed Won / Closed Lost by deal quality
}
WON_SHARE_OF_CLOSED = 0.5
MEDDPICC_SHARES = {"complete": 0.35, "partial": 0.40, "missing": 0.25}
COMPETITOR_SHARES = {"none": 0.45, "field": 0.20, "calls": 0.15, "both": 0.20}
SUBJECT_INTERNAL_DOMAIN = "firebolt.io"


class Rows:
    """Column-oriented row buffers, one per table, turned into arrow tables."""

    def __init__(self) -> None:
        self._cols: dict[str, dict[str, list[Any]]] = {}

    def add(self, table: str, **row: Any) -> None:
        cols = self._cols.get(table)
        if cols is None:
            cols = self._cols[table] = {c: [] for c in TABLES[table].column_names}
        for name, values in cols.items():
            values.append(row.get(name))

    def count(self, table: str) -> int:
        cols = self._cols.get(table)
        return len(next(iter(cols.values()))) if cols else 0

    def arrow(self, table: str) -> pa.Table:
        schema = TABLES[table].arrow_schema()
        cols = self._cols.get(table) or {c: [] for c in schema.names}
        return pa.Table.from_pydict(cols, schema=schema)

    def tables(self) -> list[str]:
        return list(self._cols)


@dataclass
class AccountPlan:
    index: int
    account_id: str
    customer_class: str
    pattern: str
    has_contacts: bool
    ticket_burst: bool
    near_renewal: bool


@dataclass
class DealPlan:
    index: int
    opportunity_id: str
    stage: str  # an open stage or "Closed Won" / "Closed Lost"
    meddpicc: str
    competitor_mode: str
    no_customer_calls: bool
    stale_close_date: bool
    slipped_close_date: bool
    regression: bool
    owner_missing: bool
    amount_missing: bool
    probability_mismatch: bool
    quality: float


@dataclass
class ChunkTruth:
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    opportunities: dict[str, dict[str, Any]] = field(default_factory=dict)


def _ts(d: date, rng: FastRandom, lo_h: int = 8, hi_h: int = 18) -> datetime:
    return datetime.combine(d, time(int(rng.integers(lo_h, hi_h)), int(rng.integers(0, 4)) * 15))


def _pick(rng: FastRandom, seq: tuple[Any, ...] | list[Any]) -> Any:
    return rng.pick(seq)


def employee_rows(rng: FastRandom, count: int) -> tuple[Rows, list[dict[str, str]]]:
    rows = Rows()
    people = []
    for i in range(count):
        first, last = _pick(rng, V.FIRST_NAMES), _pick(rng, V.LAST_NAMES)
        person = {
            "sf_user_id": f"005{i:012d}",
            "name": f"{first} {last}",
            "email": f"{first}.{last}{i}@{SUBJECT_INTERNAL_DOMAIN}".lower(),
            "title": V.EMPLOYEE_TITLES[i % len(V.EMPLOYEE_TITLES)],
        }
        rows.add("employee_d", **person)
        people.append(person)
    return rows, people


class CrmGenerator:
    """Generates the non-usage rows of one chunk of accounts."""

    def __init__(
        self,
        rng: FastRandom,
        as_of: date,
        days: int,
        employees: list[dict[str, str]],
    ) -> None:
        self.rng = rng
        self.as_of = as_of
        self.days = days
        self.employees = employees
        self.rows = Rows()
        self.truth = ChunkTruth()

    # ---------------------------------------------------------------- accounts
    def account(self, plan: AccountPlan, deals: list[DealPlan]) -> None:
        rng = self.rng
        name = (
            f"{_pick(rng, V.COMPANY_PREFIXES)}{_pick(rng, V.COMPANY_CORES)} "
            f"{_pick(rng, V.COMPANY_SUFFIXES)}"
        )
        if plan.index >= 1000:  # keep names unique at fleet scale
            name = f"{name} {plan.index}"
        domain = name.lower().replace(" ", "").replace("&", "") + ".com"
        in_scope = rng.random() < 0.8
        industries = V.IN_SCOPE_INDUSTRIES if in_scope else V.OUT_OF_SCOPE_INDUSTRIES
        industry, subs = _pick(rng, industries)
        region, countries = _pick(rng, V.REGIONS)
        employees = int(min(max(math.exp(rng.normal(math.log(600), 1.1)), 20), 50_000))
        owner = _pick(rng, self.employees)
        acc_type = (
            ACCOUNT_TYPE[plan.customer_class]
            if plan.customer_class != "prospect"
            else _pick(rng, PROSPECT_TYPES)
        )
        # Older than its usage history and than any of its deals (at most ~570 days old).
        oldest_deal = 600
        first = max(self.days, oldest_deal)
        created = self.as_of - timedelta(days=int(rng.integers(first, first + 900)))
        self.rows.add(
            "salesforce_account_d",
            sf_account_id=plan.account_id,
            sf_account_name=name,
            sf_account_type_custom=acc_type,
            sf_industry=industry,
            sf_sub_industry=_pick(rng, subs),
            account_region=region,
            billing_country=_pick(rng, countries),
            sf_company_domain=domain,
            employee_count=employees,
            annual_revenue_usd=float(round(employees * rng.uniform(1.2e5, 4e5), -3)),
            cloud_provider=_pick(rng, V.CLOUDS),
            sf_owner_id=owner["sf_user_id"],
            created_at_ts=_ts(created, rng),
        )
        contacts = self._contacts(plan, domain) if plan.has_contacts else []
        agreements = self._agreements(plan) if plan.customer_class == "commit" else []
        burst = self._tickets(plan)
        self._account_calls(plan, name, domain, contacts, owner)
        self.truth.accounts[plan.account_id] = {
            "customer_class": plan.customer_class,
            "sf_account_type_custom": acc_type,
            "in_scope_industry": in_scope,
            "contacts": len(contacts),
            "p1_p2_burst_last_30d": burst,
            "near_renewal": bool(agreements and plan.near_renewal),
            "renewal_date": agreements[-1].isoformat() if agreements else None,
            "opportunities": [d.opportunity_id for d in deals],
        }
        for deal in deals:
            self._deal(plan, deal, name, domain, contacts, owner)

    def _contacts(self, plan: AccountPlan, domain: str) -> list[dict[str, str]]:
        rng = self.rng
        out = []
        for j in range(int(rng.integers(2, 7))):
            first, last = _pick(rng, V.FIRST_NAMES), _pick(rng, V.LAST_NAMES)
            title = _pick(rng, V.CONTACT_TITLES_SENIOR if j == 0 else V.CONTACT_TITLES_OTHER)
            contact = {
                "contact_id": f"003{plan.index:09d}{j:03d}",
                "name": f"{first} {last}",
                "email": f"{first}.{last}@{domain}".lower(),
                "title": title,
                "sf_account_id": plan.account_id,
            }
            self.rows.add("contact_d", **contact)
            out.append(contact)
        return out

    def _agreements(self, plan: AccountPlan) -> list[date]:
        """Commit contracts: an expired one and the active one; returns end dates."""
        rng = self.rng
        term = int(_pick(rng, (12, 12, 24)))
        if plan.near_renewal:
            end = self.as_of + timedelta(days=int(rng.integers(10, 90)))
        else:
            end = self.as_of + timedelta(days=int(rng.integers(120, term * 30)))
        start = end - timedelta(days=term * 365 // 12)
        monthly = float(round(rng.uniform(10_000, 100_000), -2))
        ends = []
        for k, (s, e, active) in enumerate(
            ((start - timedelta(days=365), start - timedelta(days=1), False), (start, end, True))
        ):
            t = term if active else 12
            self.rows.add(
                "agreement_f",
                agreement_id=f"800{plan.index:09d}{k:03d}",
                sf_account_id=plan.account_id,
                amount=monthly * t * (1.0 if active else 0.8),
                term_months=t,
                start_date=s,
                end_date=e,
                auto_renew=bool(rng.random() < 0.3),
                is_active=active,
            )
            ends.append(e)
        return ends

    def _tickets(self, plan: AccountPlan) -> int:
        """Background tickets, plus a P1/P2 burst in the last 30 days for burst accounts.
        Returns the number of P1/P2 tickets opened in the last 30 days."""
        rng = self.rng
        recent_p12 = 0
        specs: list[tuple[int, str]] = []
        for _ in range(int(rng.poisson(2.0))):
            specs.append((int(rng.integers(31, self.days)), str(_pick(rng, ("P3", "P4", "P4")))))
        if plan.ticket_burst:
            for _ in range(int(rng.integers(3, 7))):
                specs.append((int(rng.integers(0, 30)), str(_pick(rng, ("P1", "P2", "P2")))))
        for k, (ago, prio) in enumerate(specs):
            created = _ts(self.as_of - timedelta(days=ago), rng)
            resolved = created + timedelta(hours=float(rng.uniform(2, 240)))
            is_open = resolved.date() > self.as_of
            self.rows.add(
                "support_ticket_f",
                ticket_id=f"TCK{plan.index:09d}{k:03d}",
                sf_account_id=plan.account_id,
                priority=prio,
                status="Open" if is_open else "Resolved",
                subject=_pick(rng, V.TICKET_SUBJECTS),
                created_at_ts=created,
                resolved_at_ts=None if is_open else resolved,
            )
            recent_p12 += int(ago < 30 and prio in ("P1", "P2"))
        return recent_p12

    # ---------------------------------------------------------------- calls
    def _call(
        self,
        call_id: str,
        title: str,
        start: datetime,
        account_id: str,
        opportunity_id: str | None,
        participants: list[str],
        brief: str,
        key_points: str,
        next_steps: str,
        transcript: str | None,
        is_deleted: bool = False,
    ) -> None:
        self.rows.add(
            "gong_call_f",
            call_id=call_id,
            title=title,
            start_ts=start,
            duration_minutes=float(self.rng.integers(15, 61)),
            direction="Conference",
            participant_emails=orjson.dumps(participants).decode(),
            sf_account_id=account_id,
            opportunity_id=opportunity_id,
            brief=brief,
            key_points=key_points,
            next_steps=next_steps,
            transcript=transcript,
            is_deleted=is_deleted,
        )

    def _customer_call_text(
        self, company: str, competitor: str | None, champion: str
    ) -> tuple[str, str, str, str, str]:
        """(topic, brief, key_points, next_steps, transcript) of a substantive customer call."""
        rng = self.rng
        topic = _pick(rng, V.CALL_TOPICS)
        req = _pick(rng, V.REQUIREMENTS)
        brief = (
            f"{company} and Firebolt held a {topic.lower()} session. The team focused on {req} "
            f"and on how Firebolt fits their {_pick(rng, V.USE_CASES).lower()} roadmap."
        )
        points = [f"Requirement: {req}", f"Pain: {_pick(rng, V.PAINS)}"]
        if competitor:
            points.append(f"Customer is also evaluating {competitor} for this workload")
        key_points = "; ".join(points)
        next_steps = _pick(rng, V.NEXT_STEPS)
        transcript = (
            f"{champion}: Our main problem is {req}.\n"
            f"Firebolt SE: We can show that in a POC on your own data.\n"
            + (f"{champion}: We are also looking at {competitor}.\n" if competitor else "")
            + f"{champion}: Let's agree next steps: {next_steps.lower()}."
        )
        return topic, brief, key_points, next_steps, transcript

    def _account_calls(
        self,
        plan: AccountPlan,
        company: str,
        domain: str,
        contacts: list[dict[str, str]],
        owner: dict[str, str],
    ) -> None:
        """Customer-success check-ins not tied to a deal (Commit and PLG customers)."""
        if plan.customer_class == "prospect":
            return
        rng = self.rng
        for k in range(int(rng.integers(0, 3))):
            start = _ts(self.as_of - timedelta(days=int(rng.integers(1, self.days))), rng)
            people = [owner["email"], *(c["email"] for c in contacts[:2])]
            _, brief, key_points, next_steps, transcript = self._customer_call_text(
                company, None, "Customer"
            )
            self._call(
                f"GC{plan.index:09d}A{k:02d}",
                f"{company} <> Firebolt | Quarterly business review",
                start,
                plan.account_id,
                None,
                people,
                brief,
                key_points,
                next_steps,
                transcript,
            )

    # ---------------------------------------------------------------- deals
    def _meddpicc(
        self, deal: DealPlan, stage_for_rules: str, champion: str, competitor: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        """MEDDPICC text/status pairs by completeness class; returns the fields and the
        list of fields required at the stage that are missing."""
        rng = self.rng
        fields = V.MEDDPICC_FIELDS
        required = V.DEMO_MEDDPICC_REQUIRED[stage_for_rules]
        if deal.meddpicc == "complete":
            filled = set(fields)
        elif deal.meddpicc == "missing":
            filled = set()
        else:
            k = int(rng.integers(1, min(3, len(required) - 1) + 1))
            dropped = set(rng.sample_k(required, k))
            filled = set(fields) - dropped
            # partial: some optional later-stage fields are also still open
            filled -= {f for f in fields if f not in required and rng.random() < 0.5}
        texts = {
            "metrics": _pick(rng, V.METRICS),
            "economic_buyer": f"{champion.split(' (')[0]}'s manager, the CFO",
            "identify_pain": _pick(rng, V.PAINS),
            "champion": champion,
            "decision_criteria": _pick(rng, V.DECISION_CRITERIA),
            "decision_making_process": _pick(rng, V.DECISION_PROCESS),
            "paper_process": _pick(rng, V.PAPER_PROCESS),
            "competition": (
                f"Competing with {competitor}"
                if competitor
                else "No competitive evaluation identified"
            ),
        }
        out: dict[str, Any] = {}
        for f in fields:
            if f in filled:
                out[f] = texts[f]
                out[f"{f}_status"] = _pick(rng, ("Identified", "Validated", "Validated"))
            else:
                out[f] = None
                out[f"{f}_status"] = _pick(rng, ("No Assessment", "No Assessment", None))
        missing = [f for f in required if f not in filled]
        return out, missing

    def _stage_path(self, deal: DealPlan) -> list[str]:
        order = V.DEMO_STAGE_ORDER
        if deal.stage == "Closed Won":
            path = [*order[:6], "Closed Won"]
        elif deal.stage == "Closed Lost":
            reached = int(self.rng.integers(1, 5))
            path = [*order[: reached + 1], "Closed Lost"]
        else:
            path = order[: order.index(deal.stage) + 1]
        if deal.regression and len(path) >= 4:
            # e.g. ... Propose -> Proof of Concept -> Propose ...: one step back, then on.
            k = int(self.rng.integers(2, len(path) - 1))
            path = [*path[: k + 1], path[k - 1], *path[k:]]
        return path

    def _deal(
        self,
        plan: AccountPlan,
        deal: DealPlan,
        company: str,
        domain: str,
        contacts: list[dict[str, str]],
        account_owner: dict[str, str],
    ) -> None:
        rng = self.rng
        as_of = self.as_of
        closed = deal.stage in V.DEMO_CLOSED_STAGES
        if closed:
            closed_at = as_of - timedelta(days=int(rng.integers(5, 331)))
            created = closed_at - timedelta(days=int(rng.integers(45, 241)))
            end = closed_at
            close_date: date = closed_at
        else:
            age = (3, 60) if deal.stage == "Opportunity Created" else (40, 300)
            created = as_of - timedelta(days=int(rng.integers(*age)))
            end = as_of
            if deal.stale_close_date:
                close_date = as_of - timedelta(days=int(rng.integers(5, 61)))
            else:
                close_date = as_of + timedelta(days=int(rng.integers(10, 151)))
        created_ts = _ts(created, rng)
        span = max((end - created).days, 2)

        # Stage history: stage starts spread over the deal's life, sorted.
        path = self._stage_path(deal)
        offsets = [o * (span - 1) + 1 for o in sorted(rng.random() for _ in path[1:])]
        starts = [created_ts] + [created_ts + timedelta(days=float(o)) for o in offsets]
        if closed:
            starts[-1] = _ts(closed_at, rng)
            starts[-1] = max(starts[-1], starts[-2] + timedelta(hours=1))
        slips = int(rng.integers(1, 3)) if deal.slipped_close_date and len(path) > 1 else 0
        stage_close = [close_date] * len(path)
        if slips:
            # Each slip moves the close date of every earlier stage row back by one step,
            # so the history reads as `slips` pushes of the close date.
            for s in range(slips):
                cut = len(path) - 1 - s
                step = timedelta(days=int(rng.integers(20, 60)))
                stage_close[:cut] = [d - step for d in stage_close[:cut]]
        for j, stage in enumerate(path):
            ended = starts[j + 1] if j + 1 < len(path) else None
            self.rows.add(
                "opportunity_stage_f",
                opportunity_id=deal.opportunity_id,
                from_stage=path[j - 1] if j else None,
                to_stage=stage,
                started_at_ts=starts[j],
                ended_at_ts=ended,
                days_in_stage=(
                    round((ended - starts[j]).total_seconds() / 86400, 2) if ended else None
                ),
                close_date=stage_close[j],
            )

        champ_contact = contacts[0] if contacts else None
        senior = deal.quality > 0.5
        champion = (
            f"{champ_contact['name']} ({champ_contact['title'] if senior else 'Data Engineer'})"
            if champ_contact
            else f"Unnamed contact ({'VP Engineering' if senior else 'Data Engineer'})"
        )
        competitor = str(_pick(rng, V.COMPETITORS)) if deal.competitor_mode != "none" else None
        stage_for_rules = deal.stage
        meddpicc, missing = self._meddpicc(deal, stage_for_rules, champion, competitor)

        owner = None if deal.owner_missing else _pick(rng, self.employees)
        default_prob = V.DEMO_STAGE_PROBABILITY[deal.stage]
        probability = default_prob
        if deal.probability_mismatch:
            probability = float(min(max(default_prob + _pick(rng, (-30, -20, 20, 30)), 5), 95))
            if probability == default_prob:
                probability = default_prob + 15
        opp_type = {
            "commit": ("Renewal", "Upsell", "Expansion"),
            "plg": ("New Business", "Expansion"),
            "prospect": ("New Business",),
        }[plan.customer_class]
        months = int(_pick(rng, (12, 12, 24, 36)))
        amount = None if deal.amount_missing else float(round(rng.uniform(6e4, 1.2e6), -3))
        calls_count = self._deal_calls(
            plan,
            deal,
            company,
            domain,
            contacts,
            owner or account_owner,
            competitor,
            champion,
            created_ts,
            end,
        )
        won = deal.stage == "Closed Won"
        kind = _pick(rng, opp_type)
        self.rows.add(
            "opportunity_d",
            opportunity_id=deal.opportunity_id,
            name=f"{company} - {kind} {created.year}",
            opportunity_type=kind,
            sf_account_id=plan.account_id,
            stage_name=deal.stage,
            amount=amount,
            contract_duration_months=months,
            probability=probability,
            close_date=close_date,
            created_at_ts=created_ts,
            closed_at_date=closed_at if closed else None,
            closed_won_lost_reason=(
                _pick(rng, V.WON_REASONS if won else V.LOST_REASONS) if closed else None
            ),
            owner_id=owner["sf_user_id"] if owner else None,
            next_step=None if closed else _pick(rng, V.NEXT_STEPS),
            last_modified_date_ts=max(starts[-1], created_ts),
            competitors=competitor if deal.competitor_mode in ("field", "both") else None,
            use_case=_pick(rng, V.USE_CASES),
            expected_data_volume_tb=float(
                round(math.exp(rng.uniform(math.log(0.3), math.log(300))), 1)
            ),
            expected_concurrent_users=int(math.exp(rng.uniform(math.log(5), math.log(2000)))),
            expected_qps=float(round(math.exp(rng.uniform(math.log(1), math.log(2000))), 1)),
            latency_requirement_ms=float(_pick(rng, (100, 200, 500, 1000, 2000))),
            **meddpicc,
        )
        self.truth.opportunities[deal.opportunity_id] = {
            "sf_account_id": plan.account_id,
            "stage": deal.stage,
            "is_open": not closed,
            "won": won if closed else None,
            "quality": round(deal.quality, 4),
            "meddpicc_class": deal.meddpicc,
            "meddpicc_missing_required": missing,
            "competitor": competitor,
            "competitor_in_field": deal.competitor_mode in ("field", "both"),
            "competitor_in_calls": deal.competitor_mode in ("calls", "both"),
            "stale_close_date": deal.stale_close_date and not closed,
            "slipped_close_date": bool(slips),
            "stage_regression": len(path) != len(set(path)),
            "stage_rows": len(path),
            "no_customer_calls": deal.no_customer_calls,
            "owner_missing": deal.owner_missing,
            "amount_missing": deal.amount_missing,
            "probability_mismatch": deal.probability_mismatch,
            **calls_count,
        }

    def _deal_calls(
        self,
        plan: AccountPlan,
        deal: DealPlan,
        company: str,
        domain: str,
        contacts: list[dict[str, str]],
        owner: dict[str, str],
        competitor: str | None,
        champion: str,
        created: datetime,
        end: date,
    ) -> dict[str, int]:
        rng = self.rng
        span_days = max((datetime.combine(end, time(0)) - created).days, 1)

        def when() -> datetime:
            d = created.date() + timedelta(days=int(rng.integers(0, span_days)))
            return _ts(min(d, end), rng)

        externals = [c["email"] for c in contacts] or [f"data-team@{domain}"]
        n_customer = 0
        if not deal.no_customer_calls:
            lam = {"complete": 4.0, "partial": 2.0, "missing": 0.8}[deal.meddpicc]
            n_customer = 1 + int(min(rng.poisson(lam * (0.5 + deal.quality)), 11))
        in_calls = deal.competitor_mode in ("calls", "both")
        n_deleted = int(rng.random() < 0.15)
        n_internal = int(rng.integers(0, 3))
        n_empty = int(rng.integers(0, 2))
        if deal.no_customer_calls:  # internal and near-empty calls, but no customer call
            n_internal, n_empty = max(n_internal, 1), max(n_empty, 1)
        k = 0
        base = f"GC{deal.index:010d}"
        for j in range(n_customer + n_deleted):
            mention = competitor if in_calls and j == 0 else None
            topic, brief, key_points, next_steps, transcript = self._customer_call_text(
                company, mention, champion
            )
            people = [
                owner["email"],
                *rng.sample_k(externals, min(2, len(externals))),
            ]
            self._call(
                f"{base}{k:03d}",
                f"{company} <> Firebolt | {topic}",
                when(),
                plan.account_id,
                deal.opportunity_id,
                people,
                brief,
                key_points,
                next_steps,
                transcript,
                is_deleted=j >= n_customer,
            )
            k += 1
        for _ in range(n_internal):
            title = str(_pick(rng, V.INTERNAL_TITLES)).format(company=company)
            self._call(
                f"{base}{k:03d}",
                title,
                when(),
                plan.account_id,
                deal.opportunity_id,
                [owner["email"], _pick(rng, self.employees)["email"]],
                f"Internal discussion of the {company} opportunity: forecast, risks, staffing "
                "and the mutual action plan.",
                "Forecast category reviewed; need exec sponsor; pricing approval pending",
                "Update the forecast in CRM",
                None,
            )
            k += 1
        for _ in range(n_empty):
            self._call(
                f"{base}{k:03d}",
                f"{company} <> Firebolt | Quick sync",
                when(),
                plan.account_id,
                deal.opportunity_id,
                [owner["email"], externals[0]],
                _pick(rng, ("", "Short call.", "Call dropped after 2 minutes.")),
                _pick(rng, ("", "N/A")),
                _pick(rng, ("", "TBD")),
                None,
            )
            k += 1
        if in_calls and n_customer == 0:
            in_calls = False
        return {
            "customer_calls": n_customer,
            "internal_calls": n_internal,
            "near_empty_calls": n_empty,
            "deleted_calls": n_deleted,
            "competitor_mentioned_in_calls": in_calls,
        }
