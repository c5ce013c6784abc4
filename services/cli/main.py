"""The `revops` command."""

from __future__ import annotations

import asyncio
import contextlib
import importlib

import typer

from services.cli.orchestrator import (
    LocalStack,
    demo_triggers,
    fire_and_watch,
    prepare,
    summary,
    watch_forever,
)
from services.cli.trigger import trigger_app
from services.common.security.cli import keys_app
from services.common.settings import get_settings
from services.data_agent.warehouse.cli import warehouse_app
from services.decision_agent.anomaly.cli import anomalies_app
from services.decision_agent.consumption.cli import explain_account
from services.decision_agent.deal_quality.backtest import backtest_app
from services.decision_agent.deal_quality.cli import explain_deal
from services.decision_agent.rules.cli import rules_app
from services.dlq.cli import dlq_app
from services.execution_agent.cli import insights_app

app = typer.Typer(
    help="RevOps AI Framework: deal quality, consumption health and actions over Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(trigger_app, name="trigger")
app.add_typer(insights_app, name="insights")
app.add_typer(anomalies_app, name="anomalies")
app.add_typer(keys_app, name="keys")
app.add_typer(warehouse_app, name="warehouse")
app.add_typer(rules_app, name="rules")
app.add_typer(backtest_app, name="backtest")
app.add_typer(dlq_app, name="dlq")

explain_app = typer.Typer(help="Explain an analysis with its evidence.", no_args_is_help=True)
explain_app.command("deal")(explain_deal)
explain_app.command("account")(explain_account)
app.add_typer(explain_app, name="explain")

SERVICE_MODULES = {
    "data-agent": "services.data_agent",
    "decision-agent": "services.decision_agent",
    "execution-agent": "services.execution_agent",
    "webhook-processor": "services.webhook_processor",
    "ingress": "services.ingress",
}


@app.command()
def serve(service: str = typer.Argument(..., help=", ".join(SERVICE_MODULES))) -> None:
    """Run one service in the foreground (what each container runs)."""
    if service not in SERVICE_MODULES:
        raise typer.BadParameter(
            f"unknown service {service!r}; one of {', '.join(SERVICE_MODULES)}"
        )
    module = importlib.import_module(f"{SERVICE_MODULES[service]}.app")
    from services.common.serve import main as serve_main

    serve_main(module.NAME, module.build_runtime)


@app.command()
def run(timeout: float = typer.Option(120.0, help="Seconds to wait for the demo flows")) -> None:
    """Start every service, fire the demo triggers, print results as they arrive (Ctrl-C stops)."""
    settings = get_settings()
    stack = LocalStack(settings)
    try:
        asyncio.run(prepare(stack))
        typer.echo("all services ready; firing demo triggers (Ctrl-C to stop)")
        triggers = demo_triggers(settings)
        flows = asyncio.run(fire_and_watch(settings, triggers, timeout))
        typer.echo(summary(settings, flows, len(triggers)))
        typer.echo(
            "\nwatching for more flows (revops trigger ... from another shell); Ctrl-C stops"
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(watch_forever(settings))
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("stopping services ...")
        stack.stop()


@app.command()
def demo(timeout: float = typer.Option(120.0, help="Seconds to wait for the demo flows")) -> None:
    """One shot: start everything, run the demo triggers, print a summary, stop, exit 0."""
    settings = get_settings()
    stack = LocalStack(settings)
    try:
        asyncio.run(prepare(stack))
        triggers = demo_triggers(settings)
        flows = asyncio.run(fire_and_watch(settings, triggers, timeout))
        typer.echo(summary(settings, flows, len(triggers)))
    finally:
        stack.stop()
    if len(flows) != len(triggers):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
