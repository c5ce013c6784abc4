"""Routing rules (`routing.yaml`) as a validated model: which deliveries an analysis makes.

Kept as data so RevOps can change channels, recipients and digests without a release; the
validators catch a typo (unknown route in a compensation, a severity without a delivery
mode) when the file is loaded, not when the first critical alert goes nowhere.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.actions import ActionType, Channel, DeliveryMode
from contracts.analysis import InsightCategory
from contracts.common import AnalysisType, Severity
from services.common.settings import get_settings


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
