"""Mapping a Salesforce opportunity stage change to a deal-quality trigger (rules: YAML)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from contracts import AnalysisType, Priority, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from services.common.ids import stable_id
from services.ingress.schemas import SalesforceOpportunityEvent

RULES_FILE = Path(__file__).with_name("salesforce.yaml")
REQUESTER = "salesforce"


class StageRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open_stages: list[str]
    closed_stages: list[str]
    high_priority_stages: list[str]
    regression_priority: Priority
    default_priority: Priority

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> StageRules:
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))

    def rank(self, stage: str | None) -> int | None:
        folded = [s.casefold() for s in self.open_stages]
        key = (stage or "").strip().casefold()
        return folded.index(key) if key in folded else None

    def is_closed(self, stage: str) -> bool:
        return stage.strip().casefold() in {s.casefold() for s in self.closed_stages}

    def is_high(self, stage: str) -> bool:
        return stage.strip().casefold() in {s.casefold() for s in self.high_priority_stages}


@dataclass(frozen=True)
class Ignored:
    reason: str


def request_id_for(event: SalesforceOpportunityEvent) -> str:
    """Deterministic: Salesforce redelivering the same event makes the same request (which
    the data agent then skips), not a second review."""
    change = event.payload
    if event.event is not None and event.event.event_uuid:
        return stable_id("req-sfdc", event.event.event_uuid)
    return stable_id(
        "req-sfdc",
        change.opportunity_id,
        change.old_stage or "",
        change.new_stage,
        change.changed_at.isoformat(),
    )


def map_stage_change(event: SalesforceOpportunityEvent, rules: StageRules) -> RawTrigger | Ignored:
    change = event.payload
    old, new = (change.old_stage or "").strip(), change.new_stage.strip()
    if old.casefold() == new.casefold():
        return Ignored("stage_unchanged")
    if rules.is_closed(new):
        return Ignored("deal_closed")
    new_rank = rules.rank(new)
    if new_rank is None:
        return Ignored("unknown_stage")
    old_rank = rules.rank(old)
    regression = old_rank is not None and new_rank < old_rank
    if regression:
        priority = rules.regression_priority
    elif rules.is_high(new):
        priority = Priority.HIGH
    else:
        priority = rules.default_priority
    return RawTrigger(
        trigger_type=TriggerType.EVENT,
        parameters=TriggerParameters(
            account_id=change.account_id,
            opportunity_id=change.opportunity_id,
            analysis_type=AnalysisType.DEAL_QUALITY,
        ),
        request_id=request_id_for(event),
        requester=REQUESTER,
        priority=priority,
    )
