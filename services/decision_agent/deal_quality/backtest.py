"""`revops backtest deals`: would the deal-quality score, as it was, have told wins from
losses? (the method: backtest_run.py and docs/backtest.md)

This module is imported by `revops --help`: numpy, scikit-learn and DuckDB are imported
inside the command only.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from services.data_agent.warehouse.base import WarehouseError
from services.decision_agent.rules.loader import RuleFileError

backtest_app = typer.Typer(
    help="Score history as it stood and compare with outcomes.", no_args_is_help=True
)


@backtest_app.callback()
def _group() -> None:
    """Keep `deals` a sub-command (`revops backtest deals ...`)."""


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


@backtest_app.command("deals")
def backtest_deals(
    since: Annotated[
        str | None, typer.Option(help="Only deals closed on or after this day (YYYY-MM-DD)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only deals closed on or before this day (YYYY-MM-DD)")
    ] = None,
    horizon_days: Annotated[
        int | None,
        typer.Option(min=1, help="Score each deal this many days before it closed (backtest.yaml)"),
    ] = None,
    fit: Annotated[
        bool, typer.Option("--fit", help="Learn the overall weights from history; report the lift")
    ] = False,
    write_fitted: Annotated[
        Path | None,
        typer.Option(help="With --fit: write a deal_quality.yaml with the fitted weights here"),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    rules_dir: Annotated[Path | None, typer.Option(help="Rule files folder")] = None,
) -> None:
    """ROC AUC with a confidence interval next to baselines, calibration by band, leakage
    warnings; every deal scored with only what was known on its scoring date."""
    import orjson

    from services.common.progress import Progress
    from services.data_agent.warehouse import open_warehouse
    from services.decision_agent.deal_quality.analyzer import (
        DealQualityAnalyzer,
        load_deal_rules,
    )
    from services.decision_agent.deal_quality.backtest_fit import write_fitted as write
    from services.decision_agent.deal_quality.backtest_run import render_report, run_backtest
    from services.decision_agent.deal_quality.rule_models import BacktestRules
    from services.decision_agent.rules.loader import load_rules_dir
    from services.decision_agent.rules.rule_models import load_stage_model

    if write_fitted is not None and not fit:
        raise typer.BadParameter("--write-fitted needs --fit", param_hint="--write-fitted")
    start, end = _day(since, "--since"), _day(until, "--until")
    try:
        analyzer = DealQualityAnalyzer(load_deal_rules(rules_dir))
        stages = load_stage_model(rules_dir)
        found = load_rules_dir(rules_dir or _configured_rules(), only=(BacktestRules.rule_kind,))
        rules = found[0] if found else BacktestRules(kind="deal_backtest", version=1)
        assert isinstance(rules, BacktestRules)
        warehouse = open_warehouse()
    except RuleFileError as exc:
        typer.echo(exc.render(), err=True)
        raise typer.Exit(1) from exc
    except WarehouseError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    try:
        with Progress("backtest deals", unit="deals") as progress:

            def scored(done: int, total: int) -> None:
                if progress.total != total:
                    progress.set_total(total)
                progress.advance(done + 1 - progress.done)  # deal `done` is being scored

            report = run_backtest(
                warehouse,
                analyzer,
                stages,
                rules,
                since=start,
                until=end,
                horizon_days=horizon_days,
                fit=fit,
                progress=scored,
            )
    finally:
        warehouse.close()
    if json_output:
        typer.echo(orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(render_report(report))
    if not report.deals:
        typer.echo(
            "nothing to backtest: no deal in a won or lost stage of the stage model "
            f"({stages.describe()}) could be scored; check the stage names "
            "(revops rules validate) and --since/--until",
            err=True,
        )
        raise typer.Exit(1)
    if write_fitted is not None and report.fit is not None:
        if not report.fit.fitted:
            typer.echo(f"no fitted weights to write: {report.fit.note}", err=True)
            raise typer.Exit(1)
        write(write_fitted, analyzer.rules.overall, report.fit.fitted)
        typer.echo(f"fitted weights written to {write_fitted} (the rules folder is unchanged)")


def _configured_rules() -> Path:
    from services.common.settings import get_settings

    return get_settings().rules_dir
