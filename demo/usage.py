"""Vectorized daily usage for a chunk of accounts: one numpy matrix (accounts x days) per
metric, no Python loop per row. Patterns are injected on top of a weekday-seasonal,
holiday-aware baseline; their parameters are drawn here and returned for the ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import numpy as np
import pyarrow as pa

from services.data_agent.warehouse.schema import TABLES
from services.decision_agent.consumption.detector_config import DetectorConfig

PATTERNS: dict[str, float] = {
    # pattern -> share of accounts (quota, exact up to rounding)
    "stable": 0.34,
    "healthy_growth": 0.20,
    "gradual_decline": 0.10,
    "cliff": 0.08,
    "complete_stop": 0.08,
    "spike": 0.10,
    "cost_anomaly": 0.10,
}
WEEKEND_FACTOR = 0.625  # 5 / (5 + 2 * 0.625) = 80% of usage on weekdays
HOLIDAY_FACTOR = 0.15


@cache
def _detector() -> DetectorConfig:
    from services.common.settings import PROJECT_ROOT
    from services.decision_agent.consumption.analyzer import load_consumption_rules

    rules = load_consumption_rules(PROJECT_ROOT / "services" / "decision_agent" / "rules")
    return rules.anomalies.detector


def product_holidays(first: date, last: date) -> tuple[str, ...]:
    """The holidays the decision agent's rules close the fleet on from `first` to `last`
    (ISO dates). The generated customers close on the days the detector expects them to:
    with fixed MM-DD days, a year whose Thanksgiving fell on other dates had every account
    "drop" on the wrong Friday and work through the Thursday (a fleet-wide usage_anomaly)."""
    return tuple(d.isoformat() for d in _detector().closed_days(first, last))


# Daily cost ranges by customer class (docs/domain.md §2: Commit $10K-$100K+/month, PLG $200-$5K,
# prospects a few dollars of credits).
DAILY_COST_RANGE = {"commit": (333.0, 3_333.0), "plg": (6.7, 167.0), "prospect": (0.1, 1.0)}
USERS_RANGE = {"commit": (8, 80), "plg": (1, 10), "prospect": (1, 3)}
MONTHLY_GROWTH_RANGE = {"commit": (0.10, 0.30), "plg": (0.20, 0.50), "prospect": (0.20, 0.50)}
PRICE_PER_FBU = 0.35


def holiday_mask(dates: np.ndarray, holidays: Sequence[str]) -> np.ndarray:
    """True for the holidays (ISO dates) among `dates` (datetime64[D])."""
    return np.isin(dates, np.array(holidays, dtype="datetime64[D]"))


@dataclass
class UsageChunk:
    table: pa.Table
    cost: np.ndarray  # accounts x days, for billing
    pattern_info: list[dict[str, object]]  # per account: pattern parameters and start date


def generate_usage(
    rng: np.random.Generator,
    account_ids: Sequence[str],
    classes: Sequence[str],
    patterns: Sequence[str],
    as_of: date,
    days: int,
    holidays: Sequence[str],
) -> UsageChunk:
    n = len(account_ids)
    start = as_of - timedelta(days=days - 1)
    dates = np.arange(np.datetime64(start), np.datetime64(as_of) + 1, dtype="datetime64[D]")
    days_before = (days - 1 - np.arange(days))[None, :].astype(np.float64)  # 0 at as_of

    weekday = (dates.astype("int64") + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    season = np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)
    season = np.where(holiday_mask(dates, holidays), HOLIDAY_FACTOR, season)[None, :]

    cls = np.asarray(classes)
    pat = np.asarray(patterns)
    lo = np.array([DAILY_COST_RANGE[c][0] for c in cls])
    hi = np.array([DAILY_COST_RANGE[c][1] for c in cls])
    base_cost = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    queries_per_dollar = rng.uniform(30, 120, n)
    # Prospects get at least ~25 queries a day so that noise never looks like idleness.
    base_queries = np.maximum(base_cost * queries_per_dollar, 25.0)
    fbu_per_hour = rng.uniform(8, 32, n)
    bytes_per_query = np.exp(rng.uniform(np.log(5e7), np.log(2e9), n))
    base_ingest = base_cost * rng.uniform(2e8, 2e9, n)
    users_lo = np.array([USERS_RANGE[c][0] for c in cls])
    users_hi = np.array([USERS_RANGE[c][1] for c in cls])
    base_users = rng.integers(users_lo, users_hi + 1)

    level = np.ones((n, days))
    cost_mult = np.ones((n, days))
    # Draw every pattern's parameters for every account (fixed number of draws keeps the
    # stream independent of the pattern mix), then apply the ones that match.
    growth_lo = np.array([MONTHLY_GROWTH_RANGE[c][0] for c in cls])
    growth_hi = np.array([MONTHLY_GROWTH_RANGE[c][1] for c in cls])
    growth_rate = rng.uniform(growth_lo, growth_hi)
    growth_start = rng.integers(90, 241, n)
    decline_start = rng.integers(60, 76, n)
    decline_final = rng.uniform(0.20, 0.35, n)
    cliff_start = rng.integers(30, 41, n)
    cliff_level = rng.uniform(0.05, 0.15, n)
    stop_start = rng.integers(15, 46, n)
    spike_start = rng.integers(2, 7, n)
    spike_mult = rng.uniform(4.0, 8.0, n)
    cost_start = rng.integers(25, 31, n)
    cost_factor = rng.uniform(4.0, 6.0, n)

    db = days_before
    info: list[dict[str, object]] = []
    starts = np.zeros(n, dtype=np.int64)

    m = pat == "healthy_growth"
    months = np.clip(growth_start[:, None] - db, 0, None) / 30.0
    level = np.where(m[:, None], (1 + growth_rate[:, None]) ** months, level)
    starts[m] = growth_start[m]

    m = pat == "gradual_decline"
    ramp = 1 - (1 - decline_final[:, None]) * np.clip(
        (decline_start[:, None] - db) / decline_start[:, None], 0, 1
    )
    level = np.where(m[:, None], ramp, level)
    starts[m] = decline_start[m]

    m = pat == "cliff"
    level = np.where(m[:, None] & (db < cliff_start[:, None]), cliff_level[:, None], level)
    starts[m] = cliff_start[m]

    m = pat == "complete_stop"
    level = np.where(m[:, None] & (db < stop_start[:, None]), 0.0, level)
    starts[m] = stop_start[m]

    m = pat == "spike"
    in_spike = (db <= spike_start[:, None]) & (db > spike_start[:, None] - 3)
    level = np.where(m[:, None] & in_spike, spike_mult[:, None], level)
    starts[m] = spike_start[m]

    m = pat == "cost_anomaly"
    cost_mult = np.where(m[:, None] & (db < cost_start[:, None]), cost_factor[:, None], cost_mult)
    starts[m] = cost_start[m]

    for i in range(n):
        p = str(pat[i])
        entry: dict[str, object] = {"pattern": p}
        if p != "stable":
            # `start` = first day the pattern shows (days_before counts back from as_of).
            first = as_of - timedelta(days=int(starts[i]) - (0 if p == "spike" else 1))
            entry["pattern_start"] = first.isoformat()
        if p == "healthy_growth":
            entry["monthly_growth"] = round(float(growth_rate[i]), 4)
        elif p == "gradual_decline":
            entry["final_level"] = round(float(decline_final[i]), 4)
        elif p == "cliff":
            entry["level_after"] = round(float(cliff_level[i]), 4)
        elif p == "spike":
            entry["multiplier"] = round(float(spike_mult[i]), 4)
            entry["spike_days"] = 3
        elif p == "cost_anomaly":
            entry["cost_multiplier"] = round(float(cost_factor[i]), 4)
        info.append(entry)

    shape = (n, days)
    activity = level * season
    noise_q = rng.lognormal(0.0, 0.12, shape)
    noise_c = rng.lognormal(0.0, 0.08, shape)
    noise_i = rng.lognormal(0.0, 0.25, shape)
    query_count = np.rint(base_queries[:, None] * activity * noise_q)
    active = query_count > 0
    usage_cost = base_cost[:, None] * activity * noise_c * active
    cost = np.round(usage_cost * cost_mult, 2)
    fbu = np.round(cost / PRICE_PER_FBU, 3)
    engine_hours = np.round(fbu / fbu_per_hour[:, None], 3)
    scanned = np.rint(query_count * bytes_per_query[:, None])
    ingested = np.rint(base_ingest[:, None] * activity * noise_i * active)
    users = np.where(
        active, np.maximum(1, np.rint(base_users[:, None] * np.clip(activity, 0, 1.2))), 0
    )

    ids = np.repeat(np.asarray(account_ids, dtype=object), days)
    table = pa.Table.from_arrays(
        [
            pa.array(ids, type=pa.string()),
            pa.array(np.tile(dates, n)),
            pa.array(query_count.ravel()),
            pa.array(engine_hours.ravel()),
            pa.array(fbu.ravel()),
            pa.array(scanned.ravel()),
            pa.array(ingested.ravel()),
            pa.array(cost.ravel()),
            pa.array(users.ravel().astype(np.float64)),
        ],
        schema=TABLES["consumption_daily_f"].arrow_schema(),
    )
    return UsageChunk(table=table, cost=cost, pattern_info=info)
