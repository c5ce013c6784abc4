"""Build the analytical dataset of a deal or an account "as it stood" on a day.

`DatasetRepository(warehouse).deal_dataset(...)` / `.account_dataset(...)` return
`(ColumnarDataset, DataCollection, list[PreliminaryFinding])`: the dataset in its wire form
(docs/dataset-wire-format.md), its usage built as columns straight from the warehouse's
typed rows (no model per day; `contracts.dataset_columns.as_rows` gives the row form).
Nothing dated after `as_of` is used, so a backtest can score a closed deal as it stood weeks
before it closed: on a day before the warehouse's own as_of, stage, close date, amount and
probability come from the stage history of that day, fields without history are left out
(`history.py`), and calls, usage, tickets, contracts and billing are cut at that day. Only
customer calls are returned (internal and near-empty calls and deleted calls are filtered in
SQL, see `queries.py`). A deal without an account is analysed with a stand-in account and a
finding that says so.

The rows come from `reads.py`: one query per table for one subject (a handful per dataset),
or, for a batch of subjects (`reading_ahead`), one set-based query per table for all of
them, split per subject; the same code below builds each dataset from either.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from itertools import pairwise
from typing import Any

from contracts.common import Evidence
from contracts.dataset import (
    Account,
    Call,
    Contact,
    DataCollection,
    Employee,
    Opportunity,
    PreliminaryFinding,
    Product,
    SupportTicket,
    TimeInStage,
)
from contracts.dataset_columns import ColumnarDataset, columnar_dataset
from contracts.series import BillingSeries, UsageSeries
from services.common.stages import StageRules, load_stage_model
from services.data_agent import history
from services.data_agent.reads import BatchReads, PointReads, Window, is_valid_id
from services.data_agent.warehouse import convert
from services.data_agent.warehouse import queries as Q
from services.data_agent.warehouse.base import Row, Warehouse
from services.data_agent.warehouse.meta import meta_as_of, read_meta
from services.data_agent.warehouse.rules import DataRules, load_rules
from services.data_agent.won_times import WonTimes

DatasetResult = tuple[ColumnarDataset, DataCollection, list[PreliminaryFinding]]


#: Stands in for the account of a deal that has none (its id is empty, never a real id).
NO_ACCOUNT = Account(sf_account_id="", sf_account_name="(no account)")


class UnknownSubjectError(LookupError):
    """The account or opportunity does not exist (or did not exist yet on `as_of`).
    `reason`: unknown | created_after | no_history (for reports that count them)."""

    def __init__(self, message: str, reason: str = "unknown") -> None:
        super().__init__(message)
        self.reason = reason


class DatasetRepository:
    def __init__(
        self,
        warehouse: Warehouse,
        rules: DataRules | None = None,
        stages: StageRules | None = None,
        won_times: WonTimes | None = None,
    ) -> None:
        """`won_times`: keep the won-time statistics a while (a service) instead of reading
        them for every batch or subject (won_times.py)."""
        self.warehouse = warehouse
        self.rules = rules or load_rules()
        self.stages = stages or load_stage_model()
        self.won_times = won_times
        self._meta: dict[str, str] | None = None
        self._coverage: history.HistoryCoverage | None = None
        self._ahead: BatchReads | None = None  # a batch's rows, see reading_ahead

    def reading_ahead(
        self,
        deals: Iterable[tuple[str | None, str]] = (),
        accounts: Iterable[str] = (),
        as_of: date | None = None,
    ) -> DatasetRepository:
        """This repository for a batch of subjects: the rows of the deals (account id or
        None, opportunity id) and accounts on `as_of` (default: the warehouse's) are read
        with one set-based query per table, and its `deal_dataset` / `account_dataset` on
        that day build from them. The datasets are those this repository builds."""
        window = Window(as_of or self.default_as_of())
        if window.as_of < self.default_as_of():
            self.history_coverage()  # read once, shared with the batch
        reads = BatchReads(self.warehouse, window, self.rules, self.stages, self.won_times)
        reads.read_ahead(deals, accounts)
        batch = DatasetRepository(self.warehouse, self.rules, self.stages, self.won_times)
        batch._meta, batch._coverage, batch._ahead = self._meta, self._coverage, reads
        return batch

    @property
    def queries_read_ahead(self) -> int:
        """Set-based queries `reading_ahead` ran (0 for a repository that read none)."""
        return self._ahead.queries_run if self._ahead else 0

    def _reads(self, as_of: date | None) -> PointReads:
        """The rows of subjects on `as_of`: read ahead for this day, or one by one."""
        window = Window(as_of or self.default_as_of())
        if self._ahead is not None and self._ahead.window == window:
            return self._ahead
        return PointReads(self.warehouse, window, self.rules, self.stages, self.won_times)

    # ------------------------------------------------------------------ helpers
    def meta(self) -> dict[str, str]:
        if self._meta is None:
            self._meta = read_meta(self.warehouse)
        return self._meta

    def default_as_of(self) -> date:
        return meta_as_of(self.meta())

    def history_coverage(self) -> history.HistoryCoverage:
        """Which opportunity fields the stage history records (read once)."""
        if self._coverage is None:
            counts = self._rows(Q.HISTORY_COVERAGE)
            self._coverage = history.HistoryCoverage.from_counts(counts[0] if counts else {})
        return self._coverage

    def left_out_fields(self) -> list[str]:
        """Opportunity fields a score on a past day cannot use (no history, see history.py)."""
        return history.left_out_fields(self.history_coverage(), self.rules.as_it_stood)

    def _rows(self, query: Q.Query, **params: Any) -> list[Row]:
        return self.warehouse.fetch_all(query, params)

    @staticmethod
    def _check_id(kind: str, value: object) -> str:
        if not is_valid_id(value):
            raise UnknownSubjectError(f"unknown {kind} {value!r}")
        return value

    def _account(self, account_id: str, reads: PointReads, past: bool = False) -> Account:
        w = reads.window
        account_id = self._check_id("account", account_id)
        raw = reads.account(account_id)
        if raw is None:
            raise UnknownSubjectError(f"unknown account {account_id!r}")
        row = history.account_on_past_day(raw, self.rules.as_it_stood) if past else raw
        account = convert.to_account(row)
        if account.created_at_ts and account.created_at_ts >= w.before_ts:
            raise UnknownSubjectError(
                f"account {account_id!r} was created after {w.as_of.isoformat()}",
                "created_after",
            )
        return account

    @staticmethod
    def _employee(user_id: str | None, reads: PointReads) -> Employee | None:
        row = reads.employee(user_id) if user_id else None
        return convert.to_employee(row) if row else None

    @staticmethod
    def _product(product_id: str | None, reads: PointReads) -> Product | None:
        row = reads.product(product_id) if product_id else None
        return Product(**row) if row else None

    # ------------------------------------------------------------------ deal
    def deal_dataset(
        self, account_id: str | None, opportunity_id: str, as_of: date | None = None
    ) -> DatasetResult:
        """The deal on `as_of` (default: the warehouse's as_of). `account_id` None: the
        deal's own account, whatever it is (none included)."""
        reads = self._reads(as_of)
        w = reads.window
        past = w.as_of < self.default_as_of()
        given = None if account_id is None else self._account(account_id, reads, past)
        opportunity_id = self._check_id("opportunity", opportunity_id)
        raw = reads.opportunity(opportunity_id)
        if raw is None:
            raise UnknownSubjectError(f"unknown opportunity {opportunity_id!r}")
        if given is not None and raw["sf_account_id"] != given.sf_account_id:
            raise UnknownSubjectError(
                f"opportunity {opportunity_id!r} belongs to account {raw['sf_account_id']!r}, "
                f"not {given.sf_account_id!r}"
            )
        created = raw.get("created_at_ts")
        if created is not None and created >= w.before_ts:
            raise UnknownSubjectError(
                f"opportunity {opportunity_id!r} was created after {w.as_of.isoformat()}",
                "created_after",
            )
        has_account = bool(raw["sf_account_id"])
        account = given or (
            self._account(raw["sf_account_id"], reads, past) if has_account else NO_ACCOUNT
        )
        stage_rows = reads.stage_history(opportunity_id)
        if past:
            try:
                row = history.opportunity_on_past_day(
                    raw, stage_rows, self.history_coverage(), self.rules.as_it_stood, w.before_ts
                )
            except history.NoHistoryError as exc:
                raise UnknownSubjectError(str(exc), "no_history") from exc
        else:
            row = self._opportunity_now(raw, stage_rows, w)
        opportunity = convert.to_opportunity(row)
        stage_history = [convert.to_stage_change(self._stage_as_of(r, w)) for r in stage_rows]
        contacts_known = not past or self.rules.as_it_stood.contacts_known_before
        contacts = (
            [convert.to_contact(r) for r in reads.contacts(account.sf_account_id)]
            if has_account and contacts_known
            else []
        )
        calls = [convert.to_call(r) for r in reads.opportunity_calls(opportunity_id)]
        usage = reads.usage(account.sf_account_id) if has_account else UsageSeries.empty()
        owner = self._employee(opportunity.owner_id, reads)
        product = self._product(opportunity.product_id, reads)
        dataset = columnar_dataset(
            usage,
            BillingSeries.from_events([]),
            account=account,
            opportunity=opportunity,
            owner=owner,
            contacts=contacts,
            stage_history=stage_history,
            calls=calls,
            product=product,
            time_in_stage=self._time_in_stage(opportunity, stage_rows, reads),
            as_of=w.as_of,
        )
        findings = [
            *self._deal_findings(opportunity, product, contacts, calls, stage_rows, w),
            *(self._usage_findings(account.sf_account_id, usage) if has_account else []),
        ]
        if past:
            findings.append(self._left_out_finding(opportunity_id, w))
        sources = [
            "salesforce_account_d",
            "opportunity_d",
            "opportunity_stage_f",
            "contact_d",
            "gong_call_f",
            "consumption_daily_f",
            "employee_d",
            "product_d",
        ]
        return dataset, self._collection(dataset, sources), findings

    def _opportunity_now(self, raw: Row, stage_rows: list[Row], w: Window) -> dict[str, Any]:
        """The opportunity on the warehouse's own day: its record, with stage and close date
        from stage history when the record lags behind it."""
        row = dict(raw)
        current = history.current_row(stage_rows)
        if current is not None and current["to_stage"] != row["stage_name"]:
            stage = current["to_stage"]
            row["stage_name"] = stage
            probability = self.stages.probability(stage)
            row["probability"] = row["probability"] if probability is None else probability
        if current is not None and current.get("close_date") is not None:
            row["close_date"] = current["close_date"]
        closed_at = row.get("closed_at_date")
        if closed_at is not None and closed_at > w.as_of:
            row["closed_at_date"] = None
            row["closed_won_lost_reason"] = None
        modified = row.get("last_modified_date_ts")
        if modified is not None and modified >= w.before_ts:
            row["last_modified_date_ts"] = current["started_at_ts"] if current else None
        return row

    def _time_in_stage(
        self, opp: Opportunity, stage_rows: list[Row], reads: PointReads
    ) -> TimeInStage | None:
        """How long an open deal has been in its stage, next to the median time won deals of
        its segment spent there (only deals won before `as_of`: no look-ahead)."""
        since = history.stage_since(stage_rows)
        if since is None or not self.stages.is_open(opp.stage_name):
            return None
        w = reads.window
        rule = self.stages.stale_in_stage
        segment_values: dict[str, Any] = {c: getattr(opp, c) for c in rule.segment_by}
        stats = reads.won_time(opp.stage_name, segment_values)
        described = ", ".join(f"{c.removesuffix('_id')} {v}" for c, v in segment_values.items())
        if stats["segment_won_deals"] >= rule.min_won_deals and segment_values:
            segment, won, median = (
                described,
                stats["segment_won_deals"],
                stats["segment_median_days"],
            )
        else:
            segment, won, median = "all deals", stats["won_deals"], stats["median_days"]
        if won < rule.min_won_deals:
            median = None
        stale_after = (
            max(rule.min_days, rule.median_multiple * median)
            if median is not None
            else max(rule.min_days, rule.fallback_days)
        )
        return TimeInStage(
            stage=opp.stage_name,
            since=since.date(),
            days=(w.as_of - since.date()).days,
            segment=segment,
            won_deals=int(won),
            won_median_days=None if median is None else round(float(median), 1),
            stale_after_days=round(float(stale_after), 1),
        )

    def _left_out_finding(self, opportunity_id: str, w: Window) -> PreliminaryFinding:
        left_out = self.left_out_fields()
        return PreliminaryFinding(
            type="data_gap",
            description=f"Scored as it stood on {w.as_of.isoformat()}: fields without history "
            f"are left out ({', '.join(left_out) or 'none'})",
            evidence=[
                Evidence(
                    source="opportunity_stage_f",
                    ref=opportunity_id,
                    field="history",
                    value=len(left_out),
                    date=w.as_of.isoformat(),
                )
            ],
        )

    @staticmethod
    def _stage_as_of(row: Row, w: Window) -> Row:
        """A stage still running on as_of has no end yet."""
        ended = row.get("ended_at_ts")
        if ended is not None and ended >= w.before_ts:
            return {**row, "ended_at_ts": None, "days_in_stage": None}
        return row

    # ------------------------------------------------------------------ account
    def account_dataset(self, account_id: str, as_of: date | None = None) -> DatasetResult:
        reads = self._reads(as_of)
        w = reads.window
        account = self._account(account_id, reads)
        aid = account.sf_account_id
        contacts = [convert.to_contact(r) for r in reads.contacts(aid)]
        calls = [convert.to_call(r) for r in reads.account_calls(aid)]
        usage = reads.usage(aid)
        tickets = [self._ticket_as_of(convert.to_ticket(r), w) for r in reads.tickets(aid)]
        is_past = w.as_of < self.default_as_of()
        agreements = [
            a.model_copy(update={"is_active": a.start_date <= w.as_of <= a.end_date})
            if is_past
            else a
            for a in (convert.to_agreement(r) for r in reads.agreements(aid))
        ]
        billing = [convert.to_billing_event(r) for r in reads.billing(aid)]
        dataset = columnar_dataset(
            usage,
            BillingSeries.from_events(billing),
            account=account,
            owner=self._employee(account.sf_owner_id, reads),
            contacts=contacts,
            calls=calls,
            tickets=tickets,
            agreements=agreements,
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
    def _ticket_as_of(ticket: SupportTicket, w: Window) -> SupportTicket:
        if ticket.resolved_at_ts is not None and ticket.resolved_at_ts >= w.before_ts:
            return ticket.model_copy(update={"resolved_at_ts": None, "status": "Open"})
        return ticket

    # ------------------------------------------------------------------ findings
    def _deal_findings(
        self,
        opp: Opportunity,
        product: Product | None,
        contacts: list[Contact],
        calls: list[Call],
        stage_rows: list[Row],
        w: Window,
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

        if not opp.sf_account_id:
            out.append(
                PreliminaryFinding(
                    type="data_gap",
                    description="This deal has no account",
                    evidence=[opp_evidence("sf_account_id", None)],
                )
            )
        if opp.product_id and product is None:
            out.append(
                PreliminaryFinding(
                    type="data_gap",
                    description=f"Product {opp.product_id!r} is not in the catalog",
                    evidence=[opp_evidence("product_id", opp.product_id)],
                )
            )
        if self.stages.stage(opp.stage_name) is None:
            out.append(
                PreliminaryFinding(
                    type="inconsistency",
                    description=f"Stage {opp.stage_name!r} is not in the stage model "
                    f"({self.stages.describe()})",
                    evidence=[opp_evidence("stage_name", opp.stage_name)],
                )
            )
        required = self.stages.required_meddpicc(opp.stage_name)
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
        if not contacts and opp.sf_account_id:
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
        is_open = self.stages.is_open(opp.stage_name)
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
        expected = self.stages.probability(opp.stage_name)
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
        order = self.stages.positions
        back = [
            r
            for r in rows
            if r.get("from_stage") in order
            and r["to_stage"] in order
            and order[r["to_stage"]] < order[r["from_stage"]]
            and self.stages.is_open(r["to_stage"])
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
    def _no_contacts(account_id: str, w: Window) -> PreliminaryFinding:
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
        self, account: Account, contacts: list[Contact], usage: UsageSeries
    ) -> list[PreliminaryFinding]:
        out: list[PreliminaryFinding] = []
        last_day = usage.last_day()
        as_of = Window(date.today()) if last_day is None else Window(last_day)
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
        if last_day is None:
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

    def _usage_findings(self, account_id: str, usage: UsageSeries) -> list[PreliminaryFinding]:
        """Simple usage anomalies (the consumption analysis does the real trend work):
        idle for N+ days; last-7-day mean below 0.5x the prior 28 days; a recent day above
        3x that mean. Counted in days with a row, as the warehouse has them."""
        rule = self.rules.usage_anomaly
        rows = usage.present_days()  # the days with a row, in day order
        if not rows:
            return []
        every_day = usage.values("query_count")
        queries = every_day if len(rows) == usage.days else [every_day[i] for i in rows]

        def evidence(field: str, day: str, value: Any) -> Evidence:
            return Evidence(source="consumption_daily_f", ref=account_id, field=field, date=day,
                            value=value)  # fmt: skip

        # the last day with queries, looked for from the end (usually the last day)
        active = next((k for k in reversed(range(len(queries))) if queries[k] > 0), None)
        last_day = usage.date_at(rows[-1])
        idle = len(rows) if active is None else (last_day - usage.date_at(rows[active])).days
        if idle >= self.rules.fleet.inactive_idle_days:
            since = (
                "the start of the window"
                if active is None
                else usage.date_at(rows[active]).isoformat()
            )
            return [
                PreliminaryFinding(
                    type="anomaly",
                    description=f"No usage for {idle} days (last active {since})",
                    evidence=[evidence("query_count", last_day.isoformat(), 0)],
                )
            ]
        if len(rows) < rule.recent_days + rule.baseline_days:
            return []
        recent = queries[-rule.recent_days :]
        base_mean = _mean(queries[-(rule.recent_days + rule.baseline_days) : -rule.recent_days])
        if base_mean <= 0:
            return []
        out = []
        ratio = _mean(recent) / base_mean
        recent_days = rows[-rule.recent_days :]
        span = (
            f"{usage.date_at(recent_days[0]).isoformat()}/"
            f"{usage.date_at(recent_days[-1]).isoformat()}"
        )
        if ratio < rule.drop_below:
            out.append(
                PreliminaryFinding(
                    type="anomaly",
                    description=f"Usage dropped: last {rule.recent_days} days average "
                    f"{ratio:.2f}x the prior {rule.baseline_days} days (query_count)",
                    evidence=[evidence("query_count", span, round(ratio, 3))],
                )
            )
        peak = max(range(len(recent)), key=recent.__getitem__)  # the first highest day
        if recent[peak] > rule.spike_above * base_mean:
            x = recent[peak] / base_mean
            peak_day = usage.date_at(recent_days[peak]).isoformat()
            out.append(
                PreliminaryFinding(
                    type="anomaly",
                    description=f"Usage spike on {peak_day}: {x:.1f}x the "
                    f"daily average of the prior {rule.baseline_days} days (query_count)",
                    evidence=[evidence("query_count", peak_day, round(x, 3))],
                )
            )
        return out

    # ------------------------------------------------------------------ collection
    @staticmethod
    def _collection(dataset: ColumnarDataset, sources: list[str]) -> DataCollection:
        usage_days = len(dataset.usage_series().present_days())
        counts = {
            "account": 1,
            "opportunity": int(dataset.opportunity is not None),
            "contacts": len(dataset.contacts),
            "stage_history": len(dataset.stage_history),
            "calls": len(dataset.calls),
            "usage_days": usage_days,
            "tickets": len(dataset.tickets),
            "agreements": len(dataset.agreements),
            "billing_events": len(dataset.billing.event_date),
        }
        partial = not usage_days or (dataset.opportunity is not None and not dataset.calls)
        return DataCollection(
            status="partial" if partial else "complete",
            sources_accessed=sources,
            record_counts=counts,
        )


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


__all__ = ["DatasetRepository", "DatasetResult", "UnknownSubjectError"]
