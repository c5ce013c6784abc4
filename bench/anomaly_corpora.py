"""The series the anomaly detector is evaluated on (never part of the product).

* SKAB (real sensor data with labelled anomalies): 34 experiments (files) of eight channels
  each. The labels belong to the experiment: one event per run of the `anomaly` column, its
  onset the run's first `changepoint` row; one window per event from the onset, 10 % of
  the file wide (services/decision_agent/anomaly/labels.py). Subsets valve1, valve2, other.
  `skab()` also gives every channel as its own series with the experiment's windows.
* SKAB's anomaly-free run: the same eight channels in normal operation (false alarms).
* Real unlabelled series shipped inside PyPI packages (statsmodels, river): normal data as
  far as anyone labelled it, for false alarms at the threshold chosen on SKAB.
* The project's usage generator: per account, the daily query count (cliff, complete stop
  and spike accounts have an event; stable and growing accounts none) and the daily cost
  (cost-anomaly accounts). Windows start at the generator's recorded onset and last 10 % of
  the series (NAB's window budget for one event). Gradual declines are trends, which the
  consumption report shows, not point events: they are left out.

SKAB is read from `$REVOPS_SHARED_DATA` (default: `../shared/data` from the project root).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from services.decision_agent.anomaly.evaluation import Window
from services.decision_agent.anomaly.labels import windows_from_flags
from services.decision_agent.anomaly.table import numeric_column, parse_timestamp, read_table

ROOT = Path(__file__).resolve().parents[1]
SKAB_SUBSETS = ("valve1", "valve2", "other")
SKAB_LABELS = ("anomaly", "changepoint")
GENERATOR_AS_OF = date(2025, 6, 30)
GENERATOR_DAYS = 365


@dataclass(frozen=True)
class Series:
    name: str
    group: str
    times_s: np.ndarray
    values: np.ndarray
    windows: tuple[Window, ...]


def shared_data_dir() -> Path:
    return Path(os.environ.get("REVOPS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def skab_dir() -> Path:
    return shared_data_dir() / "skab" / "data"


@dataclass(frozen=True)
class Experiment:
    """One SKAB file: its channels observed together, and the experiment's windows (the
    labels belong to the experiment, not to a channel)."""

    name: str
    group: str
    times_s: np.ndarray
    channels: dict[str, np.ndarray]
    windows: tuple[Window, ...]

    def series(self) -> list[Series]:
        """Each channel as its own series with the experiment's windows."""
        return [
            Series(f"{self.name}:{c}", self.group, self.times_s, v, self.windows)
            for c, v in self.channels.items()
        ]


def _skab_file(path: Path, group: str, labelled: bool) -> Experiment:
    table = read_table(path)
    times = np.array([parse_timestamp(t) for t in table.column("datetime")])
    windows = (
        windows_from_flags(
            numeric_column(table, "anomaly")[0], onsets=numeric_column(table, "changepoint")[0]
        )
        if labelled
        else ()
    )
    channels = [h for h in table.header if h not in ("datetime", *SKAB_LABELS)]
    relative = path.relative_to(skab_dir()).as_posix()
    return Experiment(
        f"skab/{relative}",
        group,
        times,
        {c: numeric_column(table, c)[0] for c in channels},
        windows,
    )


def skab_experiments(subsets: tuple[str, ...] = SKAB_SUBSETS) -> list[Experiment]:
    found: list[Experiment] = []
    for subset in subsets:
        files = sorted((skab_dir() / subset).glob("*.csv"), key=lambda p: int(p.stem))
        found.extend(_skab_file(path, subset, labelled=True) for path in files)
    return found


def skab(subsets: tuple[str, ...] = SKAB_SUBSETS) -> list[Series]:
    """Every channel of every labelled SKAB experiment as its own series."""
    return [s for e in skab_experiments(subsets) for s in e.series()]


def skab_anomaly_free() -> Experiment:
    return _skab_file(skab_dir() / "anomaly-free" / "anomaly-free.csv", "anomaly-free", False)


def _yearly(years: Any) -> np.ndarray:
    return np.array(
        [(date(int(y), 7, 1) - date(1970, 1, 1)).days * 86_400.0 for y in years], dtype=float
    )


def _stamps(dates: Any) -> np.ndarray:
    return np.asarray(dates).astype("datetime64[s]").astype(float)


def _package(name: str, times_s: np.ndarray, values: Any) -> Series:
    return Series(name, "packages", times_s, np.asarray(values, dtype=float), ())


def package_series() -> list[Series]:
    """Real series that ship inside statsmodels and river (no download)."""
    import pandas as pd
    import statsmodels.datasets as sm
    from river import datasets as river_datasets

    found = []
    co2 = sm.co2.load_pandas().data["co2"]
    found.append(_package("statsmodels/co2 (weekly)", _stamps(co2.index), co2.to_numpy()))
    sun = sm.sunspots.load_pandas().data
    found.append(
        _package("statsmodels/sunspots (yearly)", _yearly(sun["YEAR"]), sun["SUNACTIVITY"])
    )
    nile = sm.nile.load_pandas().data
    found.append(_package("statsmodels/nile (yearly)", _yearly(nile["year"]), nile["volume"]))
    elnino = sm.elnino.load_pandas().data
    months = elnino.columns[1:]
    stamps = [
        np.datetime64(f"{int(y)}-{m + 1:02d}-15", "s").astype(float)
        for y in elnino["YEAR"]
        for m in range(len(months))
    ]
    found.append(
        _package(
            "statsmodels/elnino (monthly)", np.array(stamps), elnino[months].to_numpy().ravel()
        )
    )
    folder = Path(river_datasets.__file__).parent
    air = pd.read_csv(folder / "airline-passengers.csv")
    found.append(
        _package(
            "river/airline passengers (monthly)",
            _stamps(pd.to_datetime(air["month"])),
            air["passengers"],
        )
    )
    with gzip.open(folder / "trump_approval.csv.gz", "rt") as handle:
        polls = pd.read_csv(handle)
    days = (polls["ordinal_date"].to_numpy() - date(1970, 1, 1).toordinal()) * 86_400.0
    for column in polls.columns[1:]:
        found.append(_package(f"river/trump approval {column} (daily)", days, polls[column]))
    return found


GENERATOR_EVENTS = {"cliff": "query_count", "complete_stop": "query_count", "spike": "query_count"}
GENERATOR_QUIET = ("stable", "healthy_growth")


def generator_series(accounts: int = 120, seed: int = 5) -> list[Series]:
    """Daily usage of `accounts` generated accounts with the generator's recorded onsets."""
    from demo.quotas import quota_labels
    from demo.usage import PATTERNS, generate_usage, product_holidays

    first = GENERATOR_AS_OF - timedelta(days=GENERATOR_DAYS - 1)
    rng = np.random.default_rng([seed, 0])
    classes = quota_labels(rng, {"commit": 0.4, "plg": 0.4, "prospect": 0.2}, accounts)
    patterns = quota_labels(rng, PATTERNS, accounts)
    ids = [f"acc{k:05d}" for k in range(accounts)]
    usage = generate_usage(
        np.random.default_rng([seed, 1]),
        ids,
        list(classes),
        list(patterns),
        GENERATOR_AS_OF,
        GENERATOR_DAYS,
        product_holidays(first, GENERATOR_AS_OF),
    )
    times = (first.toordinal() - date(1970, 1, 1).toordinal() + np.arange(GENERATOR_DAYS)) * 86400.0
    table = usage.table
    width = int(0.1 * GENERATOR_DAYS)
    found = []
    for k, info in enumerate(usage.pattern_info):
        pattern = str(info["pattern"])
        if pattern in GENERATOR_EVENTS or pattern == "cost_anomaly":
            onset = (date.fromisoformat(str(info["pattern_start"])) - first).days
            windows: tuple[Window, ...] = (Window(onset, onset + width - 1),)
        elif pattern in GENERATOR_QUIET:
            windows = ()
        else:
            continue
        metric = "cost_usd" if pattern == "cost_anomaly" else "query_count"
        rows = slice(k * GENERATOR_DAYS, (k + 1) * GENERATOR_DAYS)
        values = table.column(metric).to_numpy()[rows].astype(float)
        found.append(
            Series(f"generator/{ids[k]}:{metric} ({pattern})", pattern, times, values, windows)
        )
    return found
