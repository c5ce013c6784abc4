"""Data-agent rules loaded from `rules.yaml` (thresholds are data, not literals in code).

The stage model (stages, open/won/lost, probabilities, MEDDPICC coverage) is not here: it is
the rules folder's `stages.yaml`, read with `load_stage_model`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from services.common.settings import get_settings

RULES_FILE = Path(__file__).with_name("rules.yaml")


class NearEmptyCall(BaseModel):
    max_brief_chars: int
    max_key_points_chars: int
    max_next_steps_chars: int


class UsageAnomaly(BaseModel):
    recent_days: int
    baseline_days: int
    drop_below: float
    spike_above: float


class FleetThresholds(BaseModel):
    model_config = ConfigDict(frozen=True)

    recent_days: int = 30
    trend_days: int = 90
    declining_below: float = 0.7
    growing_above: float = 1.3
    major_decline_below: float = 0.3
    inactive_idle_days: int = 14
    spike_recent_days: int = 7
    spike_baseline_days: int = 30
    spike_above: float = 3.0
    cost_growth_at_least: float = 3.0


class AsItStood(BaseModel):
    """Which values count as known on a past day (see rules.yaml `as_it_stood`)."""

    model_config = ConfigDict(frozen=True)

    opportunity_fields_known_at_creation: list[str]
    account_fields_known_before: list[str]
    contacts_known_before: bool = False


class DataRules(BaseModel):
    internal_call_title_keywords: list[str]
    near_empty_call: NearEmptyCall
    meddpicc_missing_statuses: list[str]
    usage_window_days: int
    usage_anomaly: UsageAnomaly
    fleet: FleetThresholds
    as_it_stood: AsItStood


#: consumption.yaml `trend` key -> fleet threshold: one set of trend thresholds for the fleet
#: screen and the consumption analysis (docs/domain.md §4).
SHARED_TREND_THRESHOLDS = {
    "major_decline_below": "major_decline_below",
    "declining_below": "declining_below",
    "growing_above": "growing_above",
    "idle_days": "inactive_idle_days",
}
CONSUMPTION_RULES_FILE = "consumption.yaml"


def shared_trend_thresholds(rules_dir: Path) -> dict[str, float]:
    """The trend thresholds of the rules folder's consumption.yaml, as fleet settings."""
    raw = yaml.safe_load((rules_dir / CONSUMPTION_RULES_FILE).read_text()) or {}
    trend = raw.get("trend") or {}
    return {
        ours: trend[theirs] for theirs, ours in SHARED_TREND_THRESHOLDS.items() if theirs in trend
    }


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_FILE, rules_dir: Path | None = None) -> DataRules:
    """`rules.yaml`, its fleet thresholds completed from `<rules_dir>/consumption.yaml`
    (default: the configured rules folder)."""
    raw = yaml.safe_load(path.read_text())
    folder = Path(rules_dir) if rules_dir is not None else get_settings().rules_dir
    raw["fleet"] = {**(raw.get("fleet") or {}), **shared_trend_thresholds(folder)}
    return DataRules.model_validate(raw)
