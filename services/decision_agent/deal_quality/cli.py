"""`revops explain deal OPPORTUNITY_ID [--json]`: score one deal from the warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from contracts.analysis import AnalysisResults
from services.cli.days import parse_day, refuse_after_data
from services.cli.errors import fail
from services.data_agent.datasets import DatasetRepository, UnknownSubjectError
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse import queries as Q
from services.data_agent.warehouse.base import WarehouseError
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer, load_deal_rules
from services.decision_agent.deal_quality.report import render_text
from services.decision_agent.rules.loader import RuleFileError

explain_deal_app = typer.Typer(help="Explain an analysis with its evidence.", no_args_is_help=True)


@explain_deal_app.callback()
def _group() -> None:
    """Keep `deal` a sub-command (`revops explain deal ...`)."""


def explain_deal_result(
    opportunity_id: str, as_of: date | None = None, rules_dir: Path | None = None
) -> AnalysisResults:
    """Load the deal's dataset from the configured warehouse and analyse it (refused for
    an unknown opportunity or a day after the warehouse's data)."""
    analyzer = DealQualityAnalyzer(load_deal_rules(rules_dir))
    warehouse = open_warehouse()
    try:
        rows = warehouse.fetch_all(Q.OPPORTUNITY_BY_ID, {"opportunity_id": opportunity_id})
        if not rows:
            raise UnknownSubjectError(f"unknown opportunity {opportunity_id!r}")
        repository = DatasetRepository(warehouse)
        refuse_after_data(as_of, repository.default_as_of())
        dataset, _, findings = repository.deal_dataset(
            str(rows[0]["sf_account_id"]), opportunity_id, as_of
        )
    finally:
        warehouse.close()
    return analyzer.analyze(f"explain-{opportunity_id}", dataset, findings)


@explain_deal_app.command("deal")
def explain_deal(
    opportunity_id: Annotated[
        str,
        typer.Argument(
            help="Opportunity id, e.g. 006000000000005 (`revops warehouse opportunities`)"
        ),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the AnalysisResults JSON")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option(help="Score the deal as it stood on this day (YYYY-MM-DD)")
    ] = None,
    rules_dir: Annotated[Path | None, typer.Option(help="Rule files folder")] = None,
) -> None:
    """Scores, score breakdowns, flags and recommendations of one deal, with evidence."""
    day = parse_day(as_of)
    try:
        result = explain_deal_result(opportunity_id, day, rules_dir)
    except UnknownSubjectError as exc:
        raise fail(f"{exc}; `revops warehouse opportunities` lists the deals") from None
    except (WarehouseError, RuleFileError, ValueError) as exc:  # DayAfterDataError too
        raise fail(str(exc)) from None
    typer.echo(result.model_dump_json(indent=2) if json_output else render_text(result))
