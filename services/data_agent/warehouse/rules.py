"""Data-agent rules loaded from `rules.yaml` (thresholds are data, not literals in code).

The stage model (stages, open/won/lost, probabilities, MEDDPICC coverage) is not here: it is
the rules folder's `stages.yaml`, read with `load_stage_model`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict

from services.common.settings import get_settings

RULES_FILE = Path(__file__).with_name("rules.yaml")
#: A call row (gong_call_f), as a warehouse adapter returns it.
CallRow = TypeVar("CallRow", bound=Mapping[str, Any])


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

    def customer_calls(self, calls: Iterable[CallRow]) -> list[CallRow]:
        """The customer calls among call rows (gong_call_f), in their order: not deleted, no
        internal-meeting keyword in the title, not near-empty (docs/domain.md).

        The subject reads fetch a subject's calls and keep these here: in the SQL, the
        keyword and length tests cost DuckDB ~2 ms more per query than the few rows cost
        Python. `queries.customer_call_predicate` is the same test in SQL, for scans over
        every account; tests/unit/warehouse/test_customer_calls.py holds the two equal.
        As in the SQL, an unknown `is_deleted` or title leaves the call out."""
        internal = _internal_title(tuple(self.internal_call_title_keywords))
        return [c for c in calls if _is_customer_call(c, internal, self.near_empty_call)]


def _is_customer_call(
    call: Mapping[str, Any], internal: re.Pattern[str] | None, empty: NearEmptyCall
) -> bool:
    deleted = call.get("is_deleted")
    if deleted is None or deleted:
        return False
    if internal is not None:
        title = call.get("title")
        if title is None or internal.search(title.lower()):
            return False
    return not (
        len(call.get("brief") or "") <= empty.max_brief_chars
        and len(call.get("key_points") or "") <= empty.max_key_points_chars
        and len(call.get("next_steps") or "") <= empty.max_next_steps_chars
    )


@lru_cache(maxsize=8)
def _internal_title(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    """Any keyword, as SQL's `LOWER(title) LIKE '%keyword%'` matches it (`%` and `_` in a
    keyword are LIKE's wildcards there, so they are here)."""
    if not keywords:
        return None
    return re.compile("|".join(_like_body(k.lower()) for k in keywords), re.DOTALL)


def _like_body(pattern: str) -> str:
    """A LIKE pattern (no escape character) as a regular expression matching anywhere."""
    return "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)


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
