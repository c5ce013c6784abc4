"""`revops explain deal OPPORTUNITY_ID [--json]`: score one deal from the warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.days import parse_day, refuse_after_data
from services.cli.errors import fail
from services.data_agent.warehouse.base import WarehouseError
from services.decision_agent.rules.loader import RuleFileError

if TYPE_CHECKING:
    from contracts.analysis import AnalysisResults

explain_deal_app = typer.Typer(help="Explain an analysis with its evidence.", no_args_is_help=True)


@explain_deal_app.callback()
def _group() -> None:
    """Keep `deal` a sub-command (`revops explain deal ...`)."""


def explain_deal_result(
    opportunity_id: str,
    as_of: date | None = None,
    rules_dir: Path | None = None,
    with_model: bool = False,
) -> AnalysisResults:
    """Load the deal's dataset from the configured warehouse and analyse it (a deal without
    an account too: the analysis then says so), and, with ``with_model``, add the
    configured model's call insights and narrative."""
    from services.data_agent.datasets import DatasetRepository
    from services.data_agent.warehouse import open_warehouse
    from services.decision_agent.deal_quality.analyzer import (
        DealQualityAnalyzer,
        load_deal_rules,
    )
    from services.decision_agent.rules.rule_models import load_stage_model

    analyzer = DealQualityAnalyzer(load_deal_rules(rules_dir))
    warehouse = open_warehouse()
    try:
        repository = DatasetRepository(warehouse, stages=load_stage_model(rules_dir))
        refuse_after_data(as_of, repository.default_as_of())
        dataset, _, findings = repository.deal_dataset(None, opportunity_id, as_of)
    finally:
        warehouse.close()
    result = analyzer.analyze(f"explain-{opportunity_id}", dataset, findings)
    if with_model:
        from services.decision_agent.ai.setup import enrich_once

        result = enrich_once(result, dataset)
    return result


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
    model: Annotated[
        bool, typer.Option("--model", help="Add the configured model's narrative (REVOPS_MODEL_*)")
    ] = False,
) -> None:
    """Scores, score breakdowns, flags and recommendations of one deal, with evidence."""
    from services.data_agent.datasets import UnknownSubjectError
    from services.decision_agent.deal_quality.report import render_text

    day = parse_day(as_of)
    try:
        result = explain_deal_result(opportunity_id, day, rules_dir, with_model=model)
    except UnknownSubjectError as exc:
        raise fail(f"{exc}; `revops warehouse opportunities` lists the deals") from None
    except (WarehouseError, RuleFileError, ValueError) as exc:  # DayAfterDataError too
        raise fail(str(exc)) from None
    typer.echo(result.model_dump_json(indent=2) if json_output else render_text(result))
