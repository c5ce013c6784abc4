"""Build the analytical dataset of a deal or an account "as it stood" on a day.

`DatasetRepository(warehouse).deal_dataset(...)` / `.account_dataset(...)` return
`(Dataset, DataCollection, list[PreliminaryFinding])`. Nothing dated after `as_of` is
used, so a backtest can score a closed deal as it stood weeks before it closed: stage,
close date and probability come from the stage history as of that day, and calls, usage,
tickets, contracts and billing are cut at that day. Only customer calls are returned
(internal and near-empty calls and deleted calls are filtered in SQL, see `queries.py`).
Each dataset costs a handful of queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, TypeVar

from contracts.common import Evidence
from contracts.dataset import (
    Account,
    Call,
    Contact,
    DataCollection,
    Dataset,
    Employee,
    Opportunity,
    PreliminaryFinding,
    SupportTicket,
    UsageDay,
)
from services.data_agent.warehouse import convert
from services.data_agent.warehouse import queries as Q
from services.data_agent.warehouse.base import Row, Warehouse
from services.data_agent.warehouse.meta import meta_as_of, read_meta
from services.data_agent.warehouse.rules import DataRules, load_rules

T = TypeVar("T")
MAX_ID_LENGTH = 64
DatasetResult = tuple[Dataset, DataCollection, list[PreliminaryFinding]]


class UnknownSubjectError(LookupError):
    """The account or opportunity does not exist (or did not exist yet on `as_of`)."""


@dataclass
class _Window:
    as_of: date

    @property
    def before_ts(self) -> datetime:
        """Exclusive upper bound for timestamps: the start of the day after as_of."""
        return datetime.combine(self.as_of + timedelta(days=1), time(0))


class DatasetRepository:
    def __init__(self, warehouse: Warehouse, rules: DataRules | None = None) -> None:
        self.warehouse = warehouse
        self.rules = rules or load_rules()
        self._meta: dict[str, str] | None = None

    # ------------------------------------------------------------------ helpers
    def meta(self) -> dict[str, str]:
        if self._meta is None:
            self._meta = read_meta(self.warehouse)
        return self._meta

    def default_as_of(self) -> date:
        return meta_as_of(self.meta())

    def _rows(self, query: Q.Query, **params: Any) -> list[Row]:
        return self.warehouse.fetch_all(query, params)

    def _models(self, query: Q.Query, convert_row: Callable[[Row], T], **params: Any) -> list[T]:
        return [convert_row(r) for r in self._rows(query, **params)]

    @staticmethod
    def _check_id(kind: str, value: object) -> str:
        if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
            raise UnknownSubjectError(f"unknown {kind} {value!r}")
        return value

    def _account(self, account_id: str, w: _Window) -> Account:
        account_id = self._check_id("account", account_id)
        rows = self._rows(Q.ACCOUNT_BY_ID, account_id=account_id)
        if not rows:
            raise UnknownSubjectError(f"unknown account {account_id!r}")
        account = convert.to_account(rows[0])
        if account.created_at_ts and account.created_at_ts >= w.before_ts:
            raise UnknownSubjectError(
                f"account {account_id!r} was created after {w.as_of.isoformat()}"
            )
        return account

    def _employee(self, user_id: str | None) -> Employee | None:
        if not user_id:
            return None
        rows = self._rows(Q.EMPLOYEE_BY_ID, user_id=user_id)
        return convert.to_employee(rows[0]) if rows else None

    def _usage(self, account_id: str, w: _Window) -> list[UsageDay]:
        after = w.as_of - timedelta(days=self.rules.usage_window_days)
        return convert.to_usage_days(
            self._rows(Q.USAGE_BY_ACCOUNT, account_id=account_id, after_date=after, as_of=w.as_of)
        )

    # ------------------------------------------------------------------ deal
    def deal_dataset(
        self, account_id: str, opportunity_id: str, as_of: date | None = None
    ) -> DatasetResult:
        w = _Window(as_of or self.default_as_of())
        account = self._account(account_id, w)
        opportunity_id = self._check_id("opportunity", opportunity_id)
        rows = self._rows(Q.OPPORTUNITY_BY_ID, opportunity_id=opportunity_id)
        if not rows:
            raise UnknownSubjectError(f"unknown opportunity {opportunity_id!r}")
        raw = rows[0]
        if raw["sf_account_id"] != account.sf_account_id:
            raise UnknownSubjectError(
                f"opportunity {opportunity_id!r} belongs to account {raw['sf_account_id']!r}, "
                f"not {account.sf_account_id!r}"
            )
        created = raw.get("created_at_ts")
        if created is not None and created >= w.before_ts:
            raise UnknownSubjectError(
                f"opportunity {opportunity_id!r} was created after {w.as_of.isoformat()}"
            )
        stage_rows = self._rows(
            Q.STAGE_HISTORY_BY_OPPORTUNITY, opportunity_id=opportunity_id, before_ts=w.before_ts
        )
        opportunity = self._opportunity_as_of(raw, stage_rows, w)
        history = [convert.to_stage_change(self._stage_as_of(r, w)) for r in stage_rows]
        contacts = self._models(
            Q.CONTACTS_BY_ACCOUNT, convert.to_contact, account_id=account.sf_account_id
        )
        calls = self._models(
            Q.CUSTOMER_CALLS_BY_OPPORTUNITY,
            convert.to_call,
            opportunity_id=opportunity_id,
            before_ts=w.before_ts,
            **Q.customer_call_params(),
        )
        usage = self._usage(account.sf_account_id, w)
        owner = self._employee(opportunity.owner_id)
        dataset = Dataset(
            account=account,
            opportunity=opportunity,
            owner=owner,
            contacts=contacts,
            stage_history=history,
            calls=calls,
            usage=usage,
            as_of=w.as_of,
        )
        findings = [
            *self._deal_findings(opportunity, contacts, calls, stage_rows, w),
            *self._usage_findings(account.sf_account_id, usage),
        ]
        sources = [
            "salesforce_account_d",
            "opportunity_d",
            "opportunity_stage_f",
            "contact_d",
            "gong_call_f",
            "consumption_daily_f",
            "employee_d",
        ]
        return dataset, self._collection(dataset, sources), findings

    def _opportunity_as_of(self, raw: Row, stage_rows: list[Row], w: _Window) -> Opportunity:
        """The opportunity as it stood on as_of: stage and close date from stage history."""
        row = dict(raw)
        current = stage_rows[-1] if stage_rows else None
        if current is not None and current["to_stage"] != row["stage_name"]:
            stage = current["to_stage"]
            row["stage_name"] = stage
            row["probability"] = self.rules.stage_probability.get(stage, row["probability"])
        if current is not None and current.get("close_date") is not None:
            row["close_date"] = current["close_date"]
        closed_at = row.get("closed_at_date")
        if closed_at is not None and closed_at > w.as_of:
            row["closed_at_date"] = None
            row["closed_won_lost_reason"] = None
        modified = row.get("last_modified_date_ts")
        if modified is not None and modified >= w.before_ts:
            row["last_modified_date_ts"] = current["started_at_ts"] if current else None
        return convert.to_opportunity(row)

    @staticmethod
    def _stage_as_of(row: Row, w: _Window) -> Row:
        """A stage still running on as_of has no end yet."""
        ended = row.get("ended_at_ts")
        if ended is not None and ended >= w.before_ts:
            return {**row, "ended_at_ts": None, "days_in_stage": None}
        return row

    # ------------------------------------------------------------------ account
    def account_dataset(self, account_id: str, as_of: date | None = None) -> DatasetResult:
        w = _Window(as_of or self.default_as_of())
        account = self._account(account_id, w)
        aid = account.sf_account_id
        contacts = self._models(Q.CONTACTS_BY_ACCOUNT, convert.to_contact, account_id=aid)
        calls = self._models(
            Q.CUSTOMER_CALLS_BY_ACCOUNT,
            convert.to_call,
            account_id=aid,
            before_ts=w.before_ts,
            **Q.customer_call_params(),
        )
        usage = self._usage(aid, w)
        tickets = [
            self._ticket_as_of(t, w)
            for t in self._models(
                Q.TICKETS_BY_ACCOUNT, convert.to_ticket, account_id=aid, before_ts=w.before_ts
            )
        ]
        is_past = w.as_of < self.default_as_of()
        agreements = [
            a.model_copy(update={"is_active": a.start_date <= w.as_of <= a.end_date})
            if is_past
            else a
            for a in self._models(
                Q.AGREEMENTS_BY_ACCOUNT, convert.to_agreement, account_id=aid, as_of=w.as_of
            )
        ]
        billing = self._models(
            Q.BILLING_BY_ACCOUNT, convert.to_billing_event, account_id=aid, as_of=w.as_of
        )
        dataset = Dataset(
            account=account,
            owner=self._employee(account.sf_owner_id),
            contacts=contacts,
            calls=calls,
            usage=usage,
            tickets=tickets,
            agreements=agreements,
            billing=billing,
            as_of=w.as_of,
        )
        findings = [
            *self._account_findings(account, contacts, usage),
            *self._usage_findings(aid, usage),
        ]
        sources = [
            "salesforce_account_d",
            "contact_d",
            "gong_call_f",
            "consumption_daily_f",
            "support_ticket_f",
            "agreement_f",
            "billing_event_f",
            "employee_d",
        ]
        return dataset, self._collection(dataset, sources), findings

    @staticmethod
    def _ticket_as_of(ticket: SupportTicket, w: _Window) -> SupportTicket:
        if ticket.resolved_at_ts is not None and ticket.resolved_at_ts >= w.before_ts:
            return ticket.model_copy(update={"resolved_at_ts": None, "status": "Open"})
        return ticket

    # ------------------------------------------------------------------ findings
    def _deal_findings(
        self,
        opp: Opportunity,
        contacts: list[Contact],
        calls: list[Call],
        stage_rows: list[Row],
        w: _Window,
    ) -> list[PreliminaryFinding]:
        oid = opp.opportunity_id
        out: list[PreliminaryFinding] = []

        def opp_evidence(field: str, value: Any, day: date | None = None) -> Evidence:
            return Evidence(
                source="opportunity_d",
                ref=oid,
                field=field,
                value=value,
                date=(day or w.as_of).isoformat(),
            )

        required = self.rules.meddpicc_required_by_stage.get(opp.stage_name, [])
        missing = [f for f in required if self._meddpicc_missing(opp, f)]
        if missing:
            out.append(
                PreliminaryFinding(
                    type="data_gap",
                    description=(
                        f"MEDDPICC fields required at stage {opp.stage_name} are missing: "
                        + ", ".join(missing)
                    ),
                    evidence=[
                        opp_evidence(f"{f}_status", getattr(opp, f"{f}_status")) for f in missing
                    ],
                )
            )
        if not contacts:
            out.append(self._no_contacts(opp.sf_account_id, w))
        if not calls:
            out.append(
                PreliminaryFinding(
                    type="data_gap",
                    description="No customer calls recorded for this opportunity "
                    "(internal, near-empty and deleted calls are not counted)",
                    evidence=[
                        Evidence(
                            source="gong_call_f",
                            ref=oid,
                            field="opportunity_id",
                            value=0,
                            date=w.as_of.isoformat(),
                        )
                    ],
                )
            )
        if not opp.owner_id:
            out.append(
                PreliminaryFinding(
                    type="data_gap",
                    description="Opportunity has no owner",
                    evidence=[opp_evidence("owner_id", None)],
                )
            )
        if opp.amount is None or opp.amount <= 0:
            out.append(
                PreliminaryFinding(
                    type="data_gap",
                    description="Opportunity amount is missing or not positive",
                    evidence=[opp_evidence("amount", opp.amount)],
                )
            )
        is_open = self.rules.is_open_stage(opp.stage_name)
        if is_open and opp.close_date is not None and opp.close_date < w.as_of:
            out.append(
                PreliminaryFinding(
                    type="inconsistency",
                    description=f"Close date {opp.close_date.isoformat()} is in the past on an "
                    "open opportunity",
                    evidence=[
                        opp_evidence("close_date", opp.close_date.isoformat(), opp.close_date)
                    ],
                )
            )
        expected = self.rules.stage_probability.get(opp.stage_name)
        if expected is not None and opp.probability is not None and opp.probability != expected:
            out.append(
                PreliminaryFinding(
                    type="inconsistency",
                    description=f"Probability {opp.probability:g}% does not match stage "
                    f"{opp.stage_name} ({expected:g}%)",
                    evidence=[opp_evidence("probability", opp.probability)],
                )
            )
        out.extend(self._history_findings(oid, stage_rows))
        return out

    def _meddpicc_missing(self, opp: Opportunity, field: str) -> bool:
        text = getattr(opp, field)
        status = getattr(opp, f"{field}_status")
        return (
            not (text or "").strip()
            or status is None
            or status in self.rules.meddpicc_missing_statuses
        )

    def _history_findings(self, oid: str, rows: list[Row]) -> list[PreliminaryFinding]:
        out: list[PreliminaryFinding] = []
        order = {s: i for i, s in enumerate(self.rules.stage_order)}
        back = [
            r
            for r in rows
            if r.get("from_stage") in order
            and r["to_stage"] in order
            and order[r["to_stage"]] < order[r["from_stage"]]
            and r["to_stage"] not in self.rules.closed_stages
        ]
        if back:
            out.append(
                PreliminaryFinding(
                    type="inconsistency",
                    description="Stage moved backwards: "
                    + "; ".join(f"{r['from_stage']} -> {r['to_stage']}" for r in back),
                    evidence=[
                        Evidence(
                            source="opportunity_stage_f",
                            ref=oid,
                            field="to_stage",
                            value=r["to_stage"],
                            date=r["started_at_ts"].date().isoformat(),
                        )
                        for r in back
                    ],
                )
            )
        slips = [
            (prev, cur)
            for prev, cur in pairwise(rows)
            if prev.get("close_date")
            and cur.get("close_date")
            and cur["close_date"] > prev["close_date"]
        ]
        if slips:
            first, last = slips[0][0]["close_date"], slips[-1][1]["close_date"]
            out.append(
                PreliminaryFinding(
                    type="inconsistency",
                    description=f"Close date slipped {len(slips)} time(s), from "
                    f"{first.isoformat()} to {last.isoformat()}",
                    evidence=[
                        Evidence(
                            source="opportunity_stage_f",
                            ref=oid,
                            field="close_date",
                            value=cur["close_date"].isoformat(),
                            date=cur["started_at_ts"].date().isoformat(),
                        )
                        for _, cur in slips
                    ],
                )
            )
        return out

    @staticmethod
    def _no_contacts(account_id: str, w: _Window) -> PreliminaryFinding:
        return PreliminaryFinding(
            type="data_gap",
            description="No contacts recorded for the account",
            evidence=[
                Evidence(
                    source="contact_d",
                    ref=account_id,
                    field="sf_account_id",
                    value=0,
                    date=w.as_of.isoformat(),
                )
            ],
        )

    def _account_findings(
        self, account: Account, contacts: list[Contact], usage: list[UsageDay]
    ) -> list[PreliminaryFinding]:
        out: list[PreliminaryFinding] = []
        as_of = _Window(date.today()) if not usage else _Window(usage[-1].usage_date)
        if not contacts:
            out.append(self._no_contacts(account.sf_account_id, as_of))
        if not account.sf_owner_id:
            out.append(
                PreliminaryFinding(
                    type="data_gap",
                    description="Account has no owner",
                    evidence=[
                        Evidence(
                            source="salesforce_account_d",
                            ref=account.sf_account_id,
                            field="sf_owner_id",
                        )
                    ],
                )
            )
        if not usage:
            out.append(
                PreliminaryFinding(
                    type="data_gap",
                    description="No usage rows for the account in the usage window",
                    evidence=[
                        Evidence(
                            source="consumption_daily_f",
                            ref=account.sf_account_id,
                            field="usage_date",
                        )
                    ],
                )
            )
        return out

    def _usage_findings(self, account_id: str, usage: list[UsageDay]) -> list[PreliminaryFinding]:
        """Simple usage anomalies (the consumption analysis does the real trend work):
        idle for N+ days; last-7-day mean below 0.5x the prior 28 days; a recent day above
        3x that mean."""
        rule = self.rules.usage_anomaly
        if not usage:
            return []

        def evidence(field: str, day: str, value: Any) -> Evidence:
            return Evidence(source="consumption_daily_f", ref=account_id, field=field, date=day,
                            value=value)  # fmt: skip

        active = [d.usage_date for d in usage if d.query_count > 0]
        last_day = usage[-1].usage_date
        idle = (last_day - active[-1]).days if active else len(usage)
        if idle >= self.rules.fleet.inactive_idle_days:
            since = active[-1].isoformat() if active else "the start of the window"
            return [
                PreliminaryFinding(
                    type="anomaly",
                    description=f"No usage for {idle} days (last active {since})",
                    evidence=[evidence("query_count", last_day.isoformat(), 0)],
                )
            ]
        if len(usage) < rule.recent_days + rule.baseline_days:
            return []
        recent = usage[-rule.recent_days :]
        base_mean = _mean(
            d.query_count
            for d in usage[-(rule.recent_days + rule.baseline_days) : -rule.recent_days]
        )
        if base_mean <= 0:
            return []
        out = []
        ratio = _mean(d.query_count for d in recent) / base_mean
        span = f"{recent[0].usage_date.isoformat()}/{recent[-1].usage_date.isoformat()}"
        if ratio < rule.drop_below:
            out.append(
                PreliminaryFinding(
                    type="anomaly",
                    description=f"Usage dropped: last {rule.recent_days} days average "
                    f"{ratio:.2f}x the prior {rule.baseline_days} days (query_count)",
                    evidence=[evidence("query_count", span, round(ratio, 3))],
                )
            )
        peak = max(recent, key=lambda d: d.query_count)
        if peak.query_count > rule.spike_above * base_mean:
            x = peak.query_count / base_mean
            out.append(
                PreliminaryFinding(
                    type="anomaly",
                    description=f"Usage spike on {peak.usage_date.isoformat()}: {x:.1f}x the "
                    f"daily average of the prior {rule.baseline_days} days (query_count)",
                    evidence=[evidence("query_count", peak.usage_date.isoformat(), round(x, 3))],
                )
            )
        return out

    # ------------------------------------------------------------------ collection
    @staticmethod
    def _collection(dataset: Dataset, sources: list[str]) -> DataCollection:
        counts = {
            "account": 1,
            "opportunity": int(dataset.opportunity is not None),
            "contacts": len(dataset.contacts),
            "stage_history": len(dataset.stage_history),
            "calls": len(dataset.calls),
            "usage_days": len(dataset.usage),
            "tickets": len(dataset.tickets),
            "agreements": len(dataset.agreements),
            "billing_events": len(dataset.billing),
        }
        partial = not dataset.usage or (dataset.opportunity is not None and not dataset.calls)
        return DataCollection(
            status="partial" if partial else "complete",
            sources_accessed=sources,
            record_counts=counts,
        )


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


__all__ = ["DatasetRepository", "DatasetResult", "UnknownSubjectError"]
