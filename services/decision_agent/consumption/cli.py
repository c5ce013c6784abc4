"""`revops explain account ACCOUNT_ID [--json]`: health, risk, trends, recent anomalies."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import orjson
import typer

from contracts.analysis import AiProvenance, CallInsight
from services.cli.days import DayAfterDataError, parse_day, refuse_after_data
from services.cli.errors import fail
from services.common.settings import get_settings
from services.decision_agent.ai.report import render_ai
from services.decision_agent.consumption.analyzer import ConsumptionAnalyzer, load_consumption_rules
from services.decision_agent.consumption.report import AccountView, analysis_results

explain_account_app = typer.Typer(help="Explain an account's consumption health.")


def explain(account_id: str, as_of: date | None = None, with_model: bool = False) -> dict[str, Any]:
    """The explanation as a JSON-ready dict (dataset read from the configured warehouse);
    ``with_model`` adds the configured model's narrative and call insights.

    Raises UnknownSubjectError for an unknown account, DayAfterDataError for a day after
    the warehouse's data, WarehouseError when the warehouse cannot be read, ValueError when
    no model is configured."""
    from services.data_agent.datasets import DatasetRepository
    from services.data_agent.warehouse import open_warehouse

    settings = get_settings()
    rules = load_consumption_rules(settings.rules_dir)
    warehouse = open_warehouse(settings)
    try:
        repository = DatasetRepository(warehouse)
        refuse_after_data(as_of, repository.default_as_of())
        dataset, _, findings = repository.account_dataset(account_id, as_of)
    finally:
        warehouse.close()
    assessment = ConsumptionAnalyzer(rules).assess(dataset)
    view = AccountView(assessment, 0, rules)
    results = analysis_results(f"explain-{account_id}", assessment, 0, rules, findings)
    if with_model:
        from services.decision_agent.ai.setup import enrich_once

        results = enrich_once(results, dataset, settings)
    body = results.analysis_results
    return {
        "account_id": account_id,
        "as_of": view.as_of.isoformat(),
        "customer_class": view.customer_class,
        "customer_health": body.score_details["customer_health"].model_dump(mode="json"),
        "churn_risk": body.score_details["churn_risk"].model_dump(mode="json"),
        "churn_risk_30_days_ago": int(assessment.previous.risk[0]),
        "escalate": bool(assessment.escalate[0]),
        "trends": {m: view.trend_sentence(m) for m in rules.trend.metrics},
        "recent_anomalies": view.recent_anomalies(),
        "flags": [f.model_dump(mode="json") for f in body.flags],
        "recommendations": [r.model_dump(mode="json") for r in results.recommendations],
        "summary": results.summary,
        "call_insights": [i.model_dump(mode="json") for i in results.call_insights],
        "ai": results.ai.model_dump(mode="json") if results.ai else None,
    }


@explain_account_app.callback()
def _group() -> None:
    """Keeps `account` a sub-command (mounted as `revops explain`)."""


@explain_account_app.command("account")
def explain_account(
    account_id: Annotated[
        str,
        typer.Argument(
            help="Account id, e.g. 001000000000016 (`revops warehouse accounts` lists them)"
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Explain the account as it stood on this day (YYYY-MM-DD; default and latest: "
            "the warehouse's last day of data)",
        ),
    ] = None,
    model: Annotated[
        bool, typer.Option("--model", help="Add the configured model's narrative (REVOPS_MODEL_*)")
    ] = False,
) -> None:
    """Health, churn risk, trends and recent anomalies of one account, with evidence."""
    from services.data_agent.datasets import UnknownSubjectError
    from services.data_agent.warehouse.base import WarehouseError
    from services.decision_agent.rules.loader import RuleFileError

    day = parse_day(as_of)
    try:
        data = explain(account_id, day, model)
    except UnknownSubjectError as exc:
        raise fail(f"{exc}; `revops warehouse accounts` lists the accounts") from None
    except (DayAfterDataError, WarehouseError, RuleFileError, ValueError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(data["summary"])
    health, risk = data["customer_health"], data["churn_risk"]
    typer.echo(
        f"Health {health['score']} ({health['band']}); churn risk {risk['score']} "
        f"({risk['band']}), "
        f"{data['churn_risk_30_days_ago']} 30 days ago{'; ESCALATE' if data['escalate'] else ''}"
    )
    for factor in risk["factors"]:
        typer.echo(f"  - {factor['explanation']}")
    typer.echo("Trends:")
    for sentence in data["trends"].values():
        typer.echo(f"  - {sentence}")
    typer.echo("Recent anomalies:" if data["recent_anomalies"] else "Recent anomalies: none")
    for a in data["recent_anomalies"]:
        typer.echo(
            f"  - {a['metric']} {a['direction']} since {a['onset']} ({a['status']}, "
            f"{a['severity']}; event {a['event_id']}): strongest {a['date']} "
            f"{a['value']:,.0f} vs {a['expected']:,.0f}, {a['reason']} ({a['score']:.2f})"
        )
    for r in data["recommendations"]:
        typer.echo(f"[{r['id']}] {r['priority']}: {r['action']} -> {r['assignee']}")
    if data["ai"] is not None:
        insights = [CallInsight.model_validate(i) for i in data["call_insights"]]
        ai = AiProvenance.model_validate(data["ai"])
        typer.echo("\n".join(render_ai(ai, insights)))
