"""Facts about one deal computed once and shared by every factor, check and score."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from contracts.common import Evidence
from contracts.dataset import Account, Call, DatasetBase, Opportunity
from services.common.stages import StageRule, StageRules
from services.decision_agent import trusted
from services.decision_agent.conversation.extractor import ConversationSignals

#: Used only when a dataset carries no date at all, so the same input gives the same output.
FALLBACK_AS_OF = date(2000, 1, 1)


def resolve_as_of(dataset: DatasetBase) -> date:
    """``Dataset.as_of``, else the latest date the dataset knows about (never the wall clock)."""
    if dataset.as_of is not None:
        return dataset.as_of
    dates: list[date] = [c.start_ts.date() for c in dataset.calls]
    dates += [s.started_at_ts.date() for s in dataset.stage_history]
    opp = dataset.opportunity
    if opp is not None:
        if opp.last_modified_date_ts is not None:
            dates.append(opp.last_modified_date_ts.date())
        if opp.created_at_ts is not None:
            dates.append(opp.created_at_ts.date())
    return max(dates, default=FALLBACK_AS_OF)


@dataclass
class DealContext:
    dataset: DatasetBase
    account: Account
    opportunity: Opportunity
    as_of: date
    signals: ConversationSignals
    stages: StageRules
    stage_index: int | None
    stage_positions: dict[str, int]
    scores: dict[str, int] = field(default_factory=dict)
    # Per-deal memo: the same field's evidence and credit are used by several factors,
    # completeness and risk checks; building them once keeps the hot path short.
    _credits: dict[str, tuple[float, str, Evidence]] = field(default_factory=dict)
    _evidence: dict[tuple[str, str], Evidence] = field(default_factory=dict)
    # Measure outcomes by MeasureSlots number: a measure scored by two rubrics runs once.
    outcomes: dict[int, Any] = field(default_factory=dict)

    @property
    def has_account(self) -> bool:
        """False for a deal the CRM has without an account (the data agent then sends a
        stand-in account with an empty id)."""
        return bool(self.opportunity.sf_account_id) and bool(self.account.sf_account_id)

    def account_gap(self, field_name: str) -> str:
        """The data gap an account field leaves: the field, or the missing account itself."""
        return field_name if self.has_account else "no_account"

    @property
    def is_closed(self) -> bool:
        stage = self.stage_rule
        return stage is not None and stage.is_closed

    @property
    def stage_rule(self) -> StageRule | None:
        return None if self.stage_index is None else self.stages.stages[self.stage_index]

    def stage_position(self, name: str) -> int | None:
        return self.stage_positions.get(name)

    def reached(self, stage_name: str) -> bool:
        """The deal is at or past ``stage_name`` (closed-lost does not count as past)."""
        target = self.stage_position(stage_name)
        if target is None or self.stage_index is None:
            return False
        current = self.stages.stages[self.stage_index]
        if current.is_closed and not current.is_won:
            return any(
                (self.stage_position(s.to_stage) or -1) >= target
                for s in self.dataset.stage_history
            )
        return self.stage_index >= target

    def meddpicc_credit(self, name: str) -> tuple[float, str, Evidence]:
        """Credit in [0, 1] for a MEDDPICC field: text present and its status's credit."""
        found = self._credits.get(name)
        if found is None:
            found = self._credits[name] = self._meddpicc_credit(name)
        return found

    def _meddpicc_credit(self, name: str) -> tuple[float, str, Evidence]:
        opp = self.opportunity
        text = getattr(opp, name)
        status = getattr(opp, f"{name}_status")
        evidence = trusted.evidence(
            "opportunity_d", opp.opportunity_id, name, value=status, snippet=text
        )
        if not (text and str(text).strip()):
            return 0.0, f"{name} is empty", evidence
        if status is None or not status.strip():
            return 1.0, f"{name} captured (no status)", evidence
        credit = self.stages.meddpicc_status_credit.get(status, 0.0)
        return credit, f"{name}: {status}", evidence

    def opportunity_evidence(self, field_name: str, value: object = None) -> Evidence:
        if value is not None:
            return trusted.evidence(
                "opportunity_d", self.opportunity.opportunity_id, field_name, value=value
            )
        key = ("opportunity_d", field_name)
        found = self._evidence.get(key)
        if found is None:
            found = self._evidence[key] = trusted.evidence(
                "opportunity_d",
                self.opportunity.opportunity_id,
                field_name,
                value=getattr(self.opportunity, field_name),
            )
        return found

    def account_evidence(self, field_name: str) -> Evidence:
        key = ("salesforce_account_d", field_name)
        found = self._evidence.get(key)
        if found is None:
            found = self._evidence[key] = trusted.evidence(
                "salesforce_account_d",
                self.account.sf_account_id,
                field_name,
                value=getattr(self.account, field_name),
            )
        return found

    def call_evidence(self, call: Call) -> Evidence:
        """Evidence that a customer call took place (id, day, title)."""
        return call_evidence(call.call_id, call.start_ts.date(), call.title)


@lru_cache(maxsize=65_536)
def call_evidence(call_id: str, day: date, title: str) -> Evidence:
    """Shared by every result that cites the call (results are read-only by convention)."""
    return trusted.evidence("gong_call_f", call_id, "start_ts", day.isoformat(), snippet=title)
