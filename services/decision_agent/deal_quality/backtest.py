"""`revops backtest deals [--since DATE]`: does the deal-quality score separate wins from losses?

Every closed deal is scored as it stood the day before it closed (the data agent's dataset
with ``as_of = closed_at_date - 1``: stage, close date, calls and stage history up to that
day, nothing later), then we report ROC AUC of the deal_quality score for won vs lost, and
per score band the number of deals, mean score and observed win rate (calibration).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import numpy as np
import orjson
import typer

from services.common.progress import Progress
from services.data_agent.datasets import DatasetRepository, UnknownSubjectError
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.base import Warehouse
from services.data_agent.warehouse.queries import Query
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer, load_deal_rules
from services.decision_agent.rules.loader import RuleFileError

WON_STAGE = "Closed Won"
LOST_STAGE = "Closed Lost"
CLOSED_DEALS = Query(
    "closed_deals_for_backtest",
    "SELECT opportunity_id, sf_account_id, stage_name, closed_at_date FROM opportunity_d "
    "WHERE stage_name IN ('Closed Won', 'Closed Lost') AND closed_at_date IS NOT NULL "
    "AND closed_at_date >= :since ORDER BY closed_at_date, opportunity_id",
)
SCORE_NAME = "deal_quality"


@dataclass(frozen=True)
class ScoredDeal:
    opportunity_id: str
    closed_at: date
    won: bool
    score: int
    band: str
    stage_before_close: str


@dataclass(frozen=True)
class BandStats:
    band: str
    min_score: int
    max_score: int
    deals: int
    won: int
    mean_score: float | None
    win_rate: float | None


@dataclass
class BacktestReport:
    since: date
    deals: list[ScoredDeal] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    auc: float | None = None
    bands: list[BandStats] = field(default_factory=list)


def roc_auc(scores: list[float], positives: list[bool]) -> float | None:
    """Probability a random won deal outscores a random lost one (ties count half)."""
    values = np.asarray(scores, dtype=float)
    labels = np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    i = 0
    while i < len(values):  # average ranks over ties
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = float(ranks[labels].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def run_backtest(
    warehouse: Warehouse,
    analyzer: DealQualityAnalyzer,
    since: date = date(1900, 1, 1),
    progress: Progress | None = None,
) -> BacktestReport:
    repository = DatasetRepository(warehouse)
    report = BacktestReport(since=since)
    rows = warehouse.fetch_all(CLOSED_DEALS, {"since": since})
    if progress is not None:
        progress.set_total(len(rows))
    for row in rows:
        if progress is not None:
            progress.advance()
        opportunity_id = str(row["opportunity_id"])
        closed_at = row["closed_at_date"]
        as_of = closed_at - timedelta(days=1)
        try:
            dataset, _, findings = repository.deal_dataset(
                str(row["sf_account_id"]), opportunity_id, as_of
            )
        except UnknownSubjectError:
            report.skipped.append(opportunity_id)  # created on its closing day: nothing to score
            continue
        result = analyzer.analyze(f"backtest-{opportunity_id}", dataset, findings)
        detail = result.analysis_results.score_details[SCORE_NAME]
        stage = dataset.opportunity.stage_name if dataset.opportunity else ""
        report.deals.append(
            ScoredDeal(
                opportunity_id,
                closed_at,
                row["stage_name"] == WON_STAGE,
                detail.score,
                detail.band,
                stage,
            )
        )
    report.auc = roc_auc([d.score for d in report.deals], [d.won for d in report.deals])
    bands = sorted(analyzer.rules.overall.bands, key=lambda b: b.min)
    for band in bands:
        members = [d for d in report.deals if band.min <= d.score <= band.max]
        won = sum(d.won for d in members)
        report.bands.append(
            BandStats(
                band=band.name,
                min_score=band.min,
                max_score=band.max,
                deals=len(members),
                won=won,
                mean_score=round(sum(d.score for d in members) / len(members), 1)
                if members
                else None,
                win_rate=round(won / len(members), 3) if members else None,
            )
        )
    return report


def render_report(report: BacktestReport) -> str:
    won = sum(d.won for d in report.deals)
    auc = f"{report.auc:.3f}" if report.auc is not None else "n/a (needs won and lost deals)"
    lines = [
        f"Backtest of {SCORE_NAME} on {len(report.deals)} closed deals since {report.since} "
        f"({won} won, {len(report.deals) - won} lost; {len(report.skipped)} skipped), "
        "each scored the day before it closed",
        f"ROC AUC (won vs lost): {auc}",
        "",
        f"{'band':<10} {'scores':>8} {'deals':>6} {'won':>5} {'mean score':>11} {'win rate':>9}",
    ]
    for b in report.bands:
        mean = f"{b.mean_score:.1f}" if b.mean_score is not None else "-"
        rate = f"{b.win_rate:.0%}" if b.win_rate is not None else "-"
        lines.append(
            f"{b.band:<10} {f'{b.min_score}-{b.max_score}':>8} {b.deals:>6} {b.won:>5} "
            f"{mean:>11} {rate:>9}"
        )
    return "\n".join(lines)


backtest_app = typer.Typer(
    help="Score history as it stood and compare with outcomes.", no_args_is_help=True
)


@backtest_app.callback()
def _group() -> None:
    """Keep `deals` a sub-command (`revops backtest deals ...`)."""


@backtest_app.command("deals")
def backtest_deals(
    since: Annotated[
        str | None, typer.Option(help="Only deals closed on or after this day (YYYY-MM-DD)")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    rules_dir: Annotated[Path | None, typer.Option(help="Rule files folder")] = None,
) -> None:
    """ROC AUC and calibration by band of the deal-quality score on closed deals."""
    try:
        start = date.fromisoformat(since) if since else date(1900, 1, 1)
        analyzer = DealQualityAnalyzer(load_deal_rules(rules_dir))
    except (RuleFileError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    warehouse = open_warehouse()
    try:
        with Progress("backtest deals", unit="deals") as progress:
            report = run_backtest(warehouse, analyzer, start, progress)
    finally:
        warehouse.close()
    if json_output:
        typer.echo(orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(render_report(report))
