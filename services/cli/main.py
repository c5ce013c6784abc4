"""The `revops` command.

Sub-commands are registered by import path (services/cli/lazy.py): only the module of the
command being run is imported, so `revops --help` starts in a fraction of a second.
"""

from __future__ import annotations

import typer

from services.cli.lazy import Lazy, lazy_group
from services.common.processes import PROCESSES, command_name

SUBCOMMANDS = {
    "trigger": Lazy("services.cli.trigger:trigger_app", "Publish analysis triggers."),
    "insights": Lazy(
        "services.execution_agent.cli:insights_app",
        "Insights: list, show, ack, start, resolve, dismiss; export to the warehouse.",
    ),
    "anomalies": Lazy(
        "services.decision_agent.anomaly.cli:anomalies_app",
        "General anomaly detector for time series, and its window-based evaluation.",
    ),
    "keys": Lazy(
        "services.common.security.cli:keys_app", "Signing keys for inter-agent envelopes."
    ),
    "warehouse": Lazy(
        "services.cli.warehouse:warehouse_app",
        "The data agent's warehouse (DuckDB or Firebolt): seed, import, check, list, query.",
    ),
    "rules": Lazy(
        "services.cli.rules:rules_app",
        "Business-rule files (YAML rubrics, thresholds, lexicons).",
    ),
    "backtest": Lazy(
        "services.cli.backtest.command:backtest_app",
        "Score history as it stood and compare with outcomes.",
    ),
    "dlq": Lazy("services.dlq.cli:dlq_app", "Dead-letter queues: list, show and replay."),
    "db": Lazy(
        "services.common.stores.cli:db_app",
        "Operational store: schema migrations (SQLite files, or REVOPS_DATABASE_URL).",
    ),
    "eval": Lazy(
        "services.decision_agent.evaluation.cli:eval_app",
        "Score extractors (lexicon or a configured model) on labelled call excerpts.",
    ),
}

EXPLAIN_SUBCOMMANDS = {
    "deal": Lazy(
        "services.cli.explain_deal:explain_deal",
        "Scores, score breakdowns, flags and recommendations of one deal, with evidence.",
    ),
    "account": Lazy(
        "services.cli.explain_account:explain_account",
        "Health, churn risk, trends and recent anomalies of one account, with evidence.",
    ),
}

app = typer.Typer(
    cls=lazy_group(SUBCOMMANDS),
    help="RevOps AI Framework: deal quality, consumption health and actions over Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

explain_app = typer.Typer(
    cls=lazy_group(EXPLAIN_SUBCOMMANDS),
    help="Explain an analysis with its evidence.",
    no_args_is_help=True,
)
app.add_typer(explain_app, name="explain")

SERVICE_MODULES = {command_name(name): f"services.{name}" for name in PROCESSES}


@app.command()
def serve(service: str = typer.Argument(..., help=", ".join(SERVICE_MODULES))) -> None:
    """Run one service in the foreground (what each container runs)."""
    import os
    import sys

    if service not in SERVICE_MODULES:
        raise typer.BadParameter(
            f"unknown service {service!r}; one of {', '.join(SERVICE_MODULES)}"
        )
    # The service's own process (`python -m services.<name>`) replaces this one: the same
    # pid (the container's), without what the CLI loaded (typer, click, rich; see
    # services/common/lean_process.py).
    os.execv(sys.executable, [sys.executable, "-m", SERVICE_MODULES[service]])


@app.command()
def run(timeout: float = typer.Option(120.0, help="Seconds to wait for the demo flows")) -> None:
    """Start every service, fire the demo triggers, print results as they arrive (Ctrl-C stops)."""
    import contextlib

    from services.cli.orchestrator import (
        LocalStack,
        demo_triggers,
        fire_and_watch,
        prepare,
        summary,
        watch_forever,
    )
    from services.cli.stop_signals import StopSignals
    from services.common.settings import get_settings

    settings = get_settings()
    stack = LocalStack(settings)
    stop = StopSignals(stack.stop)
    stop.install()
    try:
        prepare(stack, stop)
        typer.echo("all services ready; firing demo triggers (Ctrl-C to stop)")
        triggers = demo_triggers(settings)
        flows = stop.run(fire_and_watch(settings, triggers, timeout))
        typer.echo(summary(settings, flows, len(triggers)))
        typer.echo(
            "\nwatching for more flows (revops trigger ... from another shell); Ctrl-C stops"
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.run(watch_forever(settings))
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("stopping services ...")
        stack.stop()


@app.command()
def demo(timeout: float = typer.Option(120.0, help="Seconds to wait for the demo flows")) -> None:
    """One shot: start everything, run the demo triggers, print a summary, stop, exit 0."""
    from services.cli.orchestrator import (
        LocalStack,
        demo_triggers,
        fire_and_watch,
        prepare,
        summary,
    )
    from services.cli.stop_signals import StopSignals
    from services.common.settings import get_settings

    settings = get_settings()
    stack = LocalStack(settings)
    stop = StopSignals(stack.stop)
    stop.install()
    try:
        prepare(stack, stop)
        triggers = demo_triggers(settings)
        flows = stop.run(fire_and_watch(settings, triggers, timeout))
        typer.echo(summary(settings, flows, len(triggers)))
    finally:
        stack.stop()
    if len(flows) != len(triggers):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
