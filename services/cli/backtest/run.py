"""The honest deal backtest: does the deal-quality score, as it was, predict wins?

Every closed deal is scored as it stood `horizon_days` before it closed, by the same data
agent and analysis as a live deal: stage, amount, close date and probability as the stage
history had them that day, fields without history left out (and listed), calls and usage cut
at that day (see services/data_agent/history.py). Then, on the same deals:

* ROC AUC of the score with a bootstrap confidence interval, next to three baselines: the
  owner's win rate (only deals closed before the scoring date), time in stage, stage only;
  and the score's lead over the best baseline (paired resamples);
* calibration: deals, wins and win rate per score band, with a warning when one band holds
  most deals (the score then hardly tells them apart);
* the leakage guard: a field that alone almost separates won from lost is named.

numpy and scikit-learn come in through `stats`: import this module lazily.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from services.cli.backtest.fit import FitReport, fit_weights
from services.cli.backtest.stats import (
    BandStats,
    Interval,
    bootstrap_aucs,
    calibration,
    leakage,
)
from services.data_agent.datasets import DatasetRepository, UnknownSubjectError
from services.data_agent.history import stage_since
from services.data_agent.warehouse.base import Warehouse
from services.data_agent.warehouse.queries import closed_deals
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer
from services.decision_agent.deal_quality.rule_models import BacktestRules, StageRules

SCORE_NAME = "deal_quality"
SUB_SCORES = ("icp_fit", "deal_health", "data_completeness", "technical_fit")
BASELINES = {
    "owner_win_rate": "owner win rate (deals closed before the scoring date)",
    "time_in_stage": "time in stage (shorter is better)",
    "stage_only": "stage only (its default probability)",
}
SKIP_REASONS = {
    "created_after": "created after its scoring date",
    "no_history": "no stage history on its scoring date",
    "unknown": "not found as of its scoring date",
}


@dataclass(frozen=True)
class ScoredDeal:
    opportunity_id: str
    closed_at: date
    scored_as_of: date
    won: bool
    score: int
    band: str
    stage_then: str
    sub_scores: dict[str, int]
    baselines: dict[str, float]


@dataclass
class BacktestReport:
    since: date | None
    until: date | None
    horizon_days: int
    deals: list[ScoredDeal] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    history_fields: list[str] = field(default_factory=list)
    left_out_fields: list[str] = field(default_factory=list)
    contacts_left_out: bool = True
    auc: dict[str, Interval] = field(default_factory=dict)
    bands: list[BandStats] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fit: FitReport | None = None

    @property
    def won(self) -> int:
        return sum(d.won for d in self.deals)


class _OwnerHistory:
    """Each owner's closed deals by date, to read a win rate as of any day."""

    def __init__(self, rows: list[tuple[str | None, date, bool]]) -> None:
        self._dates: dict[str | None, list[date]] = defaultdict(list)
        self._wins: dict[str | None, list[int]] = defaultdict(lambda: [0])
        for owner, closed, won in sorted(rows, key=lambda r: r[1]):
            self._dates[owner].append(closed)
            wins = self._wins[owner]
            wins.append(wins[-1] + int(won))

    def win_rate(self, owner: str | None, before: date) -> float:
        """(wins + 1) / (closed + 2) over deals closed strictly before `before`."""
        n = bisect.bisect_left(self._dates.get(owner, []), before)
        wins = self._wins[owner][n] if owner in self._wins else 0
        return (wins + 1) / (n + 2)


def run_backtest(
    warehouse: Warehouse,
    analyzer: DealQualityAnalyzer,
    stages: StageRules,
    rules: BacktestRules,
    *,
    since: date | None = None,
    until: date | None = None,
    horizon_days: int | None = None,
    fit: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestReport:
    horizon = rules.horizon_days if horizon_days is None else horizon_days
    report = BacktestReport(since, until, horizon)
    repository = DatasetRepository(warehouse, stages=stages)
    coverage = repository.history_coverage()
    report.history_fields = sorted(coverage.fields)
    report.left_out_fields = repository.left_out_fields()
    report.contacts_left_out = not repository.rules.as_it_stood.contacts_known_before
    won_stages = set(stages.names("won"))
    rows = warehouse.fetch_all(closed_deals(stages))
    owners = _OwnerHistory(
        [
            (r["owner_id"], r["closed_at_date"], r["stage_name"] in won_stages)
            for r in rows
            if r["closed_at_date"] is not None
        ]
    )
    skipped: Counter[str] = Counter()
    fields: dict[str, list[object]] = defaultdict(list)
    selected = [
        r
        for r in rows
        if r["closed_at_date"] is not None
        and (since is None or r["closed_at_date"] >= since)
        and (until is None or r["closed_at_date"] <= until)
    ]
    skipped["closed without a closing date"] = sum(1 for r in rows if r["closed_at_date"] is None)
    for index, row in enumerate(selected):
        if progress is not None:
            progress(index, len(selected))
        closed_at: date = row["closed_at_date"]
        as_of = closed_at - timedelta(days=horizon)
        try:
            dataset, _, findings = repository.deal_dataset(None, row["opportunity_id"], as_of)
        except UnknownSubjectError as exc:
            skipped[SKIP_REASONS.get(exc.reason, SKIP_REASONS["unknown"])] += 1
            continue
        result = analyzer.analyze(f"backtest-{row['opportunity_id']}", dataset, findings)
        details = result.analysis_results.score_details
        opp = dataset.opportunity
        assert opp is not None
        since_then = stage_since([s.model_dump() for s in dataset.stage_history])
        days_in_stage = (as_of - since_then.date()).days if since_then is not None else 0
        report.deals.append(
            ScoredDeal(
                opportunity_id=str(row["opportunity_id"]),
                closed_at=closed_at,
                scored_as_of=as_of,
                won=row["stage_name"] in won_stages,
                score=details[SCORE_NAME].score,
                band=details[SCORE_NAME].band,
                stage_then=opp.stage_name,
                sub_scores={n: details[n].score for n in SUB_SCORES if n in details},
                baselines={
                    "owner_win_rate": round(owners.win_rate(opp.owner_id, as_of), 4),
                    "time_in_stage": float(-days_in_stage),
                    "stage_only": stages.probability(opp.stage_name) or 0.0,
                },
            )
        )
        for name, value in opp.model_dump().items():
            fields[f"opportunity.{name}"].append(value)
        for name, value in dataset.account.model_dump().items():
            fields[f"account.{name}"].append(value)
    report.skipped = {k: v for k, v in skipped.items() if v}
    _statistics(report, analyzer, rules, fields)
    if fit and report.deals:
        order = sorted(range(len(report.deals)), key=lambda i: report.deals[i].scored_as_of)
        report.fit = fit_weights(
            {n: [d.sub_scores.get(n, 0) for d in report.deals] for n in SUB_SCORES},
            [d.won for d in report.deals],
            order,
            analyzer.rules.overall,
            rules,
        )
    return report


def _statistics(
    report: BacktestReport,
    analyzer: DealQualityAnalyzer,
    rules: BacktestRules,
    fields: dict[str, list[object]],
) -> None:
    deals = report.deals
    won = [d.won for d in deals]
    scorers: dict[str, list[float]] = {SCORE_NAME: [float(d.score) for d in deals]}
    for name in BASELINES:
        scorers[name] = [d.baselines[name] for d in deals]
    if deals:
        report.auc = bootstrap_aucs(
            scorers,
            won,
            resamples=rules.bootstrap_resamples,
            confidence=rules.confidence,
            seed=rules.seed,
            versus=None,
        )
        best = max(BASELINES, key=lambda n: report.auc[n].value or 0.0)
        paired = bootstrap_aucs(
            {SCORE_NAME: scorers[SCORE_NAME], best: scorers[best]},
            won,
            resamples=rules.bootstrap_resamples,
            confidence=rules.confidence,
            seed=rules.seed,
            versus=best,
        )
        report.auc[f"{SCORE_NAME} - {best}"] = paired[f"{SCORE_NAME} - {best}"]
    bands = [(b.name, b.min, b.max) for b in analyzer.rules.overall.bands]
    report.bands = calibration(bands, [d.score for d in deals], won)
    if not deals:
        return
    if all(won) or not any(won):
        outcome = "won" if all(won) else "lost"
        report.warnings.append(
            f"every scored deal was {outcome}: AUC needs won and lost deals (check the stage "
            "model's won and lost stages)"
        )
    crowded = max(report.bands, key=lambda b: b.deals)
    share = crowded.deals / len(deals)
    if share > rules.dominant_band_share:
        report.warnings.append(
            f"{share:.0%} of the deals fall in one band ({crowded.band}, "
            f"{crowded.min_score}-{crowded.max_score}): the score hardly tells them apart"
        )
    for signal in leakage(fields, won, rules.leakage_auc):
        report.warnings.append(signal.describe())


def render_report(report: BacktestReport) -> str:
    deals = report.deals
    window = f"{report.since or 'the first'} .. {report.until or 'the last'}"
    lines = [
        f"Backtest of {SCORE_NAME} on {len(deals):,} closed deals (closed {window}; "
        f"{report.won:,} won, {len(deals) - report.won:,} lost), each scored as it stood "
        f"{report.horizon_days} days before it closed",
    ]
    if report.skipped:
        lines.append(
            "Skipped: " + "; ".join(f"{n:,} {reason}" for reason, n in report.skipped.items())
        )
    known = ", ".join(report.history_fields) or "none"
    lines.append(f"As of the scoring date from history: {known}")
    left_out = ", ".join(report.left_out_fields) or "none"
    lines.append(f"Left out (no history, so unknown on the scoring date): {left_out}")
    if report.contacts_left_out:
        lines.append("Contacts left out (contact_d has no creation date)")
    if report.auc:
        confidence = "bootstrap CI"
        lines += ["", f"ROC AUC (won vs lost) on the same deals, with {confidence}:"]
        lines.append(f"  {SCORE_NAME + ' score':<58} {report.auc[SCORE_NAME].render()}")
        for name, label in BASELINES.items():
            lines.append(f"  {'baseline: ' + label:<58} {report.auc[name].render()}")
        for name, interval in report.auc.items():
            if " - " in name:
                lines.append(f"  {name.replace(' - ', ' minus '):<58} {interval.render(True)}")
    lines += [
        "",
        f"{'band':<10} {'scores':>8} {'deals':>7} {'won':>6} {'mean score':>11} {'win rate':>9}",
    ]
    for b in report.bands:
        mean = f"{b.mean_score:.1f}" if b.mean_score is not None else "-"
        rate = f"{b.win_rate:.0%}" if b.win_rate is not None else "-"
        lines.append(
            f"{b.band:<10} {f'{b.min_score}-{b.max_score}':>8} {b.deals:>7,} {b.won:>6,} "
            f"{mean:>11} {rate:>9}"
        )
    if report.warnings:
        lines += ["", "Warnings:", *(f"  ! {w}" for w in report.warnings)]
    if report.fit is not None:
        lines += ["", *render_fit(report.fit)]
    return "\n".join(lines)


def render_fit(fit: FitReport) -> list[str]:
    lines = ["Fitted weights (logistic regression on the sub-scores, time-ordered folds):"]
    if fit.note:
        return [*lines, f"  {fit.note}"]
    lines.append(f"  {'sub-score':<20} {'hand-set':>9} {'fitted':>9}")
    for name in fit.sub_scores:
        lines.append(f"  {name:<20} {fit.hand_set[name]:>9g} {fit.fitted.get(name, 0):>9g}")
    lines.append(
        f"  out of sample ({fit.out_of_fold_deals:,} later deals, {fit.folds_used} folds): "
        f"AUC fitted {fit.auc['fitted weights'].render()}, hand-set "
        f"{fit.auc['hand-set weights'].render()}"
    )
    lift = fit.lift
    if lift is not None:
        lines.append(f"  lift of the fitted weights over the hand-set ones: {lift.render(True)}")
    lines.append("  The rubric is unchanged; --write-fitted FILE writes these weights.")
    return lines
