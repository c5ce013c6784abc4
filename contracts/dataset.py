"""The structured analytical dataset the data agent publishes (topic `revops.datasets`).

Seed: "Data Flow & Transformations", stage 2. Row models mirror the warehouse tables of
docs/domain.md §2 (column names kept), so the decision agent reads warehouse facts, not
a paraphrase of them.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts.common import AnalysisType, Contract, Evidence, Subject
from contracts.series import BillingEvent, BillingSeries, UsageDay, UsageSeries


class CustomerClass(StrEnum):
    COMMIT = "commit"
    PLG = "plg"
    PROSPECT = "prospect"


class Account(Contract):
    sf_account_id: str
    sf_account_name: str
    sf_account_type_custom: str | None = None
    customer_class: CustomerClass = CustomerClass.PROSPECT
    sf_industry: str | None = None
    sf_sub_industry: str | None = None
    account_region: str | None = None
    billing_country: str | None = None
    sf_company_domain: str | None = None
    employee_count: int | None = None
    annual_revenue_usd: float | None = None
    cloud_provider: str | None = None
    sf_owner_id: str | None = None
    created_at_ts: datetime | None = None


class Opportunity(Contract):
    opportunity_id: str
    name: str
    opportunity_type: str | None = None
    # None: the CRM has the deal without an account (the analysis says so).
    sf_account_id: str | None = None
    stage_name: str
    amount: float | None = None
    contract_duration_months: int | None = None
    probability: float | None = None
    close_date: date | None = None
    created_at_ts: datetime | None = None
    closed_at_date: date | None = None
    closed_won_lost_reason: str | None = None
    owner_id: str | None = None
    next_step: str | None = None
    last_modified_date_ts: datetime | None = None
    competitors: str | None = None
    # -> Product.product_id; a value missing from the catalog is reported, not dropped.
    product_id: str | None = None
    # Technical qualification fields kept on the opportunity by sales engineering.
    use_case: str | None = None
    expected_data_volume_tb: float | None = None
    expected_concurrent_users: int | None = None
    expected_qps: float | None = None
    latency_requirement_ms: float | None = None
    # MEDDPICC: free text + status ('No Assessment', 'Partial Understanding',
    # 'Identified', 'Validated').
    metrics: str | None = None
    metrics_status: str | None = None
    economic_buyer: str | None = None
    economic_buyer_status: str | None = None
    identify_pain: str | None = None
    identify_pain_status: str | None = None
    champion: str | None = None
    champion_status: str | None = None
    decision_criteria: str | None = None
    decision_criteria_status: str | None = None
    decision_making_process: str | None = None
    decision_making_process_status: str | None = None
    paper_process: str | None = None
    paper_process_status: str | None = None
    competition: str | None = None
    competition_status: str | None = None

    @property
    def acv(self) -> float | None:
        if self.amount is None or not self.contract_duration_months:
            return None
        return self.amount / self.contract_duration_months * 12


class Product(Contract):
    """A catalog entry (the product table an opportunity links to)."""

    product_id: str
    product_name: str
    product_family: str | None = None
    list_price: float | None = None


class TimeInStage(Contract):
    """How long an open deal has been in its stage, next to how long won deals of its
    segment spent there (measured on the warehouse's own history before `as_of`)."""

    stage: str
    since: date
    days: int
    segment: str = Field(description="e.g. 'product GTX Pro', or 'all deals'")
    won_deals: int = Field(description="Won deals the median is measured on")
    won_median_days: float | None = None
    stale_after_days: float = Field(description="Longer than this counts as stale")


class StageChange(Contract):
    opportunity_id: str
    from_stage: str | None = None
    to_stage: str
    started_at_ts: datetime
    ended_at_ts: datetime | None = None
    days_in_stage: float | None = None


class Contact(Contract):
    contact_id: str
    name: str | None = None
    email: str | None = None
    title: str | None = None
    sf_account_id: str


class Employee(Contract):
    sf_user_id: str
    name: str | None = None
    email: str | None = None
    title: str | None = None


class Agreement(Contract):
    agreement_id: str
    sf_account_id: str
    amount: float
    term_months: int
    start_date: date
    end_date: date
    auto_renew: bool = False
    is_active: bool = True


class SupportTicket(Contract):
    ticket_id: str
    sf_account_id: str
    priority: str  # P1..P4
    status: str
    subject: str | None = None
    created_at_ts: datetime
    resolved_at_ts: datetime | None = None


class Call(Contract):
    """A Gong call. Only customer calls reach the dataset (no internal or near-empty calls)."""

    call_id: str
    title: str
    start_ts: datetime
    duration_minutes: float | None = None
    direction: str | None = None
    participant_emails: list[str] = Field(default_factory=list)
    sf_account_id: str | None = None
    opportunity_id: str | None = None
    brief: str | None = None
    key_points: str | None = None
    next_steps: str | None = None
    transcript: str | None = None


class DatasetBase(Contract):
    """What every form of a dataset has: the warehouse entities, and its series read as
    typed views (`contracts.series`). The analyses take this type, so they read usage through
    `usage_series()` whether the dataset came as rows or as columns."""

    account: Account
    opportunity: Opportunity | None = None
    owner: Employee | None = None
    contacts: list[Contact] = Field(default_factory=list)
    stage_history: list[StageChange] = Field(default_factory=list)
    calls: list[Call] = Field(default_factory=list)
    tickets: list[SupportTicket] = Field(default_factory=list)
    agreements: list[Agreement] = Field(default_factory=list)
    product: Product | None = Field(
        default=None, description="The opportunity's catalog product, when the catalog has it"
    )
    time_in_stage: TimeInStage | None = None
    as_of: date | None = Field(
        default=None, description="The day the analysis is made for (no data after it is used)."
    )

    def usage_series(self) -> UsageSeries:
        raise NotImplementedError

    def billing_series(self) -> BillingSeries:
        raise NotImplementedError


class Dataset(DatasetBase):
    """The row form: what the data agent builds (one object per usage day), and the wire form
    of schema_version 1. The wire form is columnar now (`contracts.dataset_columns`)."""

    usage: list[UsageDay] = Field(default_factory=list)
    billing: list[BillingEvent] = Field(default_factory=list)

    def usage_series(self) -> UsageSeries:
        return UsageSeries.from_rows(self.usage)

    def billing_series(self) -> BillingSeries:
        return BillingSeries.from_events(self.billing)


class DataCollection(Contract):
    status: str = "complete"  # complete | partial
    sources_accessed: list[str] = Field(default_factory=list)
    record_counts: dict[str, int] = Field(default_factory=dict)


class PreliminaryFinding(Contract):
    type: str  # data_gap | anomaly | inconsistency
    description: str
    evidence: list[Evidence] = Field(default_factory=list)


class DatasetMessage(Contract):
    """Seed stage 2 output, whatever the form of its dataset."""

    schema_version: int = Field(description="1: series as rows; 2: series as columns")
    request_id: str
    analysis_type: AnalysisType
    subject: Subject
    requested_at: datetime | None = Field(
        default=None, description="When the trigger was accepted (flow latency is measured from it)"
    )
    data_collection: DataCollection
    preliminary_findings: list[PreliminaryFinding] = Field(default_factory=list)
    dataset: DatasetBase


class AnalyticalDataset(DatasetMessage):
    """The row form (schema_version 1): what the data agent builds; still read during the
    upgrade. What travels now is `ColumnarAnalyticalDataset` (schema_version 2)."""

    schema_version: Literal[1] = 1
    dataset: Dataset
