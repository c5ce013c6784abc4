"""Every analysis type, declared once: what a trigger of the type must name and what it is
called. The services key their own registries by `AnalysisType` (docs/extending.md):

* data agent: `DATASET_BUILDERS` / `SUBJECT_FINDERS` in `services/data_agent/builders.py`;
* decision agent: `ANALYZERS` in `services/decision_agent/analyzers.py`;
* execution agent: `POST_ANALYSIS_HOOKS` in `services/execution_agent/service.py`, routes in
  `routing.yaml`, message templates under `services/webhook_processor/templates/`;
* the CLI makes one `revops trigger <command>` per entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.common import AnalysisType


@dataclass(frozen=True)
class AnalysisTypeSpec:
    """One analysis type. A *job* (`fans_out_to` set) analyses nothing itself: the data agent
    finds its subjects and publishes one trigger of `fans_out_to` per subject."""

    analysis_type: AnalysisType
    title: str  # flow outputs and insight lists: "Deal quality assessment"
    help: str  # `revops trigger <command> --help`
    needs_account: bool = False
    needs_opportunity: bool = False
    fans_out_to: AnalysisType | None = None

    @property
    def command(self) -> str:
        """`revops trigger <command>`: the type's value with dashes."""
        return self.analysis_type.value.replace("_", "-")

    @property
    def is_job(self) -> bool:
        return self.fans_out_to is not None

    def missing_ids(self, account_id: str | None, opportunity_id: str | None) -> list[str]:
        """The ids a trigger of this type must carry and does not."""
        missing = []
        if self.needs_account and not account_id:
            missing.append("account_id")
        if self.needs_opportunity and not opportunity_id:
            missing.append("opportunity_id")
        return missing


ANALYSIS_TYPES: dict[AnalysisType, AnalysisTypeSpec] = {
    spec.analysis_type: spec
    for spec in (
        AnalysisTypeSpec(
            AnalysisType.DEAL_QUALITY,
            "Deal quality assessment",
            "Assess one opportunity's deal quality.",
            needs_account=True,
            needs_opportunity=True,
        ),
        AnalysisTypeSpec(
            AnalysisType.CONSUMPTION,
            "Consumption pattern analysis",
            "Analyse one customer's consumption, health and churn risk.",
            needs_account=True,
        ),
        AnalysisTypeSpec(
            AnalysisType.FLEET_SCAN,
            "Fleet scan",
            "Screen every account (set-based); a consumption flow starts for each one with news.",
            fans_out_to=AnalysisType.CONSUMPTION,
        ),
        AnalysisTypeSpec(
            AnalysisType.DEAL_REVIEW,
            "Deal review",
            "A deal-quality flow for every open opportunity (the weekly review).",
            fans_out_to=AnalysisType.DEAL_QUALITY,
        ),
        AnalysisTypeSpec(
            AnalysisType.RENEWAL_RISK,
            "Renewal risk assessment",
            "Score one customer's next renewal (within 90 days) and recommend a renewal motion.",
            needs_account=True,
        ),
        AnalysisTypeSpec(
            AnalysisType.RENEWAL_REVIEW,
            "Renewal review",
            "A renewal-risk flow for every account whose agreement ends within 90 days.",
            fans_out_to=AnalysisType.RENEWAL_RISK,
        ),
    )
}


def spec_for(analysis_type: AnalysisType) -> AnalysisTypeSpec:
    return ANALYSIS_TYPES[analysis_type]
