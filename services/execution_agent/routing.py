"""Routing rules (`routing.yaml`) as a validated model: which deliveries an analysis makes.

Kept as data so RevOps can change channels, recipients and digests without a release; the
validators catch a typo (unknown route in a compensation, a severity without a delivery
mode) when the file is loaded, not when the first critical alert goes nowhere.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from contracts.actions import ActionType, Channel, DeliveryMode
from contracts.analysis import InsightCategory
from contracts.common import AnalysisType, Severity
from services.common.settings import get_settings
from services.execution_agent.insights import InsightEvent


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> Any:
    """ "90s", "30m", "6h", "1d" or a number of seconds (anything else: pydantic's
    timedelta forms, e.g. ISO 8601 "PT6H")."""
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
EVERY_ANALYSIS = "every_analysis"
NOTIFY_ON = [InsightEvent.CREATED, InsightEvent.REOPENED, InsightEvent.ESCALATED]


class RouteScope(StrEnum):
    INSIGHT = "insight"  # one job per matching insight
    ANALYSIS = "analysis"  # one job per analysis (e.g. the CRM write-back, the owner task)


class Team(Rule):
    team: str
    owner_role: str = Field(description="Who owns follow-up: AE/SE for deals, CSM for usage")
    assignees: list[str] = Field(default_factory=list)


class Route(Rule):
    name: str
    scope: RouteScope = RouteScope.INSIGHT
    analysis_types: list[AnalysisType] = Field(default_factory=list, description="Empty = any")
    categories: list[InsightCategory] = Field(default_factory=list, description="Empty = any")
    severities: list[Severity] = Field(
        default_factory=list,
        description="Insight severities that trigger it. Empty = any; an analysis-scope route "
        "with severities runs only when at least one insight qualifies.",
    )
    channel: Channel
    type: ActionType
    destination: str = Field(description="Destination name in webhooks.yaml")
    template: str
    recipients: list[str] = Field(default_factory=list)
    team: str | None = Field(default=None, description="Default: the analysis type's team")
    delivery_mode: DeliveryMode | None = Field(
        default=None, description="Fixed mode; default: by severity (delivery_modes)"
    )
    score_key: str | None = Field(default=None, description="Score written back (CRM update)")
    send_on: list[InsightEvent] | Literal["every_analysis"] = Field(
        default_factory=lambda: list(NOTIFY_ON),
        description="Insight events that make it send (an analysis-scope route: an event of "
        "any insight that qualifies); every_analysis: each analysis, e.g. a CRM write-back",
    )
    cooldown: Duration = Field(
        default=timedelta(0),
        description="After sending about a subject and insight type, stay quiet about them "
        "this long unless the insight became more urgent than what was sent",
    )
    update_template: str | None = Field(
        default=None,
        description="Ticket routes: while a ticket this route opened for the subject is open "
        "(an insight it covers is still open), events update it with this template instead "
        "of opening another",
    )

    @model_validator(mode="after")
    def _ticket_only_updates(self) -> Route:
        if self.update_template is not None and self.channel is not Channel.TICKET:
            raise ValueError(f"route {self.name!r}: update_template is for ticket routes only")
        return self

    def sends_on(self, event: InsightEvent) -> bool:
        return self.send_on == EVERY_ANALYSIS or event in self.send_on

    def matches(
        self, analysis_type: AnalysisType, category: str | None, severity: str | None
    ) -> bool:
        if self.analysis_types and analysis_type not in self.analysis_types:
            return False
        if self.categories and category is not None and category not in self.categories:
            return False
        return not (self.severities and severity is not None and severity not in self.severities)


class CompensatingAction(Rule):
    channel: Channel
    type: ActionType
    destination: str
    template: str


class CompensationRule(Rule):
    """A step that must not stand alone: if it succeeded while a required companion failed,
    the compensating action runs (the seed's compensating transactions)."""

    name: str
    step: str = Field(description="Route whose success must not stand alone")
    requires: list[str] = Field(min_length=1, description="Routes that must succeed with it")
    action: CompensatingAction
    reason: str


class RoutingRules(Rule):
    version: int = 1
    delivery_modes: dict[Severity, DeliveryMode]
    teams: dict[AnalysisType, Team]
    routes: list[Route]
    compensations: list[CompensationRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> RoutingRules:
        missing = [s.value for s in Severity if s not in self.delivery_modes]
        if missing:
            raise ValueError(f"delivery_modes has no entry for severities: {missing}")
        names = [r.name for r in self.routes]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"route names must be unique, repeated: {sorted(duplicates)}")
        for rule in self.compensations:
            unknown = [n for n in (rule.step, *rule.requires) if n not in names]
            if unknown:
                raise ValueError(f"compensation {rule.name!r} names unknown routes: {unknown}")
        return self

    def route(self, name: str) -> Route:
        return next(r for r in self.routes if r.name == name)

    def team_for(self, analysis_type: AnalysisType) -> Team | None:
        return self.teams.get(analysis_type)

    @classmethod
    def load(cls, path: Path | str | None = None) -> RoutingRules:
        path = Path(path) if path is not None else get_settings().routing_file
        return cls.model_validate(yaml.safe_load(path.read_text()))
