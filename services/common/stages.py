"""The stage model (rule kind ``deal_stages``): which sales stages exist, in which order,
which are open, won or lost, their default probability and the MEDDPICC coverage each adds.

One file (``stages.yaml`` in the rules folder) is read by every part of the system: the data
agent (open/closed filters, probability as of a day, time in stage), the importer (is a
stage name known?), the deal-quality analysis and the backtest. No stage name is written in
code or SQL: queries bind the names this model lists.
"""

from __future__ import annotations

import itertools
from functools import cached_property, lru_cache
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.rulefiles import (
    RuleFile,
    RuleFileError,
    RuleIssue,
    RuleProblem,
    load_rules_dir,
    register_rule_kind,
)

MEDDPICC_FIELDS = (
    "metrics",
    "economic_buyer",
    "decision_criteria",
    "decision_making_process",
    "paper_process",
    "identify_pain",
    "champion",
    "competition",
)
StageStatus = Literal["open", "won", "lost"]
#: Opportunity columns a time-in-stage segment may be keyed by.
SegmentColumn = Literal["product_id", "opportunity_type", "owner_id"]


def _by_product() -> list[SegmentColumn]:
    return ["product_id"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageRule(_Strict):
    name: str = Field(min_length=1)
    status: StageStatus = "open"
    probability: float = Field(ge=0, le=100)
    adds_meddpicc: list[str] = Field(default_factory=list)

    @property
    def is_closed(self) -> bool:
        return self.status != "open"

    @property
    def is_won(self) -> bool:
        return self.status == "won"


class StaleInStage(_Strict):
    """When an open deal counts as stale in its stage: it has been there longer than
    ``median_multiple`` x the median time won deals of its segment spent in that stage (and
    at least ``min_days``). With fewer than ``min_won_deals`` won deals in the segment the
    median of all won deals is used; with fewer than that overall, ``fallback_days``."""

    segment_by: list[SegmentColumn] = Field(default_factory=_by_product)
    median_multiple: float = Field(default=2.0, gt=0)
    min_days: int = Field(default=30, ge=0)
    min_won_deals: int = Field(default=5, ge=1)
    fallback_days: int = Field(default=90, ge=1)


@register_rule_kind
class StageRules(RuleFile):
    """Sales stages in pipeline order (open stages first, then the closed ones)."""

    rule_kind: ClassVar[str] = "deal_stages"

    stages: list[StageRule] = Field(min_length=2)
    meddpicc_status_credit: dict[str, float]
    unassessed_statuses: list[str] = Field(default_factory=lambda: ["No Assessment"])
    stale_in_stage: StaleInStage = Field(default_factory=StaleInStage)

    # ------------------------------------------------------------ questions asked in code
    @cached_property
    def positions(self) -> dict[str, int]:
        return {stage.name: i for i, stage in enumerate(self.stages)}

    def stage(self, name: str | None) -> StageRule | None:
        index = self.positions.get(name or "")
        return None if index is None else self.stages[index]

    def names(self, status: StageStatus | None = None) -> list[str]:
        return [s.name for s in self.stages if status is None or s.status == status]

    @property
    def closed_names(self) -> list[str]:
        return [s.name for s in self.stages if s.is_closed]

    def is_open(self, name: str) -> bool:
        """Known open stages and unknown names (never silently treated as closed)."""
        stage = self.stage(name)
        return stage is None or not stage.is_closed

    def probability(self, name: str) -> float | None:
        stage = self.stage(name)
        return None if stage is None else stage.probability

    def required_meddpicc(self, name: str) -> list[str]:
        """MEDDPICC fields expected at ``name``: what it and every earlier stage add."""
        index = self.positions.get(name)
        if index is None:
            return []
        fields: list[str] = []
        for stage in self.stages[: index + 1]:
            fields.extend(f for f in stage.adds_meddpicc if f not in fields)
        return fields

    def describe(self) -> str:
        """'A, B (open); C (won); D (lost)', for messages about unknown stage names."""
        parts = []
        for status in ("open", "won", "lost"):
            names = self.names(status)
            if names:
                parts.append(f"{', '.join(names)} ({status})")
        return "; ".join(parts)

    # ------------------------------------------------------------ validation
    def issues(self) -> list[RuleIssue]:
        issues: list[RuleIssue] = []
        seen: dict[str, int] = {}
        for i, stage in enumerate(self.stages):
            folded = stage.name.strip().casefold()
            if folded in seen:
                issues.append(
                    RuleIssue(
                        ("stages", i, "name"),
                        f"duplicate stage {stage.name!r} (same as stage {seen[folded] + 1}, "
                        "ignoring case)",
                    )
                )
            seen.setdefault(folded, i)
            for j, field in enumerate(stage.adds_meddpicc):
                if field not in MEDDPICC_FIELDS:
                    issues.append(
                        RuleIssue(
                            ("stages", i, "adds_meddpicc", j),
                            f"unknown MEDDPICC field {field!r}; known: "
                            + ", ".join(MEDDPICC_FIELDS),
                        )
                    )
            if stage.is_won and stage.probability != 100:
                issues.append(
                    RuleIssue(("stages", i, "probability"), "a won stage has probability 100")
                )
            if stage.status == "lost" and stage.probability != 0:
                issues.append(
                    RuleIssue(("stages", i, "probability"), "a lost stage has probability 0")
                )
        statuses: tuple[StageStatus, ...] = ("open", "won", "lost")
        for status in statuses:
            if not self.names(status):
                issues.append(
                    RuleIssue(("stages",), f"the model needs at least one {status} stage")
                )
        first_closed = next((i for i, s in enumerate(self.stages) if s.is_closed), None)
        if first_closed is not None:
            for i, stage in enumerate(self.stages[first_closed:], start=first_closed):
                if not stage.is_closed:
                    issues.append(
                        RuleIssue(
                            ("stages", i, "status"),
                            f"open stage {stage.name!r} comes after closed stage "
                            f"{self.stages[first_closed].name!r}: list open stages first",
                        )
                    )
        open_stages = [(i, s) for i, s in enumerate(self.stages) if not s.is_closed]
        for (_, before), (i, after) in itertools.pairwise(open_stages):
            if after.probability < before.probability:
                issues.append(
                    RuleIssue(
                        ("stages", i, "probability"),
                        f"probability {after.probability:g} of {after.name!r} is below "
                        f"{before.probability:g} of the earlier stage {before.name!r}",
                    )
                )
        for meddpicc_status, credit in self.meddpicc_status_credit.items():
            if not 0 <= credit <= 1:
                issues.append(
                    RuleIssue(
                        ("meddpicc_status_credit", meddpicc_status), "credit must be in [0, 1]"
                    )
                )
        return issues


@lru_cache(maxsize=8)
def _load_stage_model(root: Path) -> StageRules:
    files = load_rules_dir(
        root, only=(StageRules.rule_kind,), models={StageRules.rule_kind: StageRules}
    )
    if len(files) != 1:
        raise RuleFileError(
            [
                RuleProblem(
                    root,
                    None,
                    None,
                    "",
                    f"expected exactly one stage model (kind: deal_stages), found {len(files)}",
                )
            ]
        )
    model = files[0]
    assert isinstance(model, StageRules)
    return model


def load_stage_model(rules_dir: Path | None = None) -> StageRules:
    """The stage model of ``rules_dir`` (default: the configured rules folder), cached."""
    if rules_dir is None:
        from services.common.settings import get_settings

        rules_dir = get_settings().rules_dir
    return _load_stage_model(Path(rules_dir).resolve())
