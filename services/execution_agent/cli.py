"""`revops insights ...`: list, show and move insights through their lifecycle.

Register with the root CLI: `app.add_typer(insights_app, name="insights")`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.execution_agent.insights import (
    Insight,
    InsightError,
    InsightRepository,
    InsightStatus,
)
from services.execution_agent.store import Store

insights_app = typer.Typer(help="Insights: list, show, ack, start, resolve, dismiss.")


def _console() -> Console:
    """Made per command so `COLUMNS` is honoured (rich assumes 80 columns in a pipe)."""
    return Console()


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NoteOption = Annotated[str | None, typer.Option("--note", help="Why (kept in the audit trail).")]
ActorOption = Annotated[str, typer.Option("--actor", envvar="USER", help="Who does it.")]
VersionOption = Annotated[
    int | None,
    typer.Option("--expected-version", help="Refuse if the insight changed since this version."),
]


class _State:
    db: Path | None = None


_state = _State()


@insights_app.callback()
def _options(
    db: Annotated[
        Path | None,
        typer.Option("--db", envvar="REVOPS_INSIGHTS_DB", help="State database file."),
    ] = None,
) -> None:
    _state.db = db


def _repo() -> InsightRepository:
    return InsightRepository(Store(_state.db))


def _print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@insights_app.command("list")
def list_insights(
    status: Annotated[
        str | None, typer.Option("--status", help="open, acknowledged, ..., expired")
    ] = None,
    category: Annotated[str | None, typer.Option("--category")] = None,
    account: Annotated[str | None, typer.Option("--account")] = None,
    since: Annotated[
        datetime | None, typer.Option("--since", help="Updated at or after (ISO date/time).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List insights, newest first."""
    if status is not None and status not in {s.value for s in InsightStatus}:
        raise typer.BadParameter(f"unknown status {status!r}", param_hint="--status")
    insights = _repo().list(
        status=status, category=category, account_id=account, since=since, limit=limit
    )
    if as_json:
        _print_json([_as_dict(i) for i in insights])
        return
    table = Table(title=f"{len(insights)} insight(s)")
    for column in ("id", "status", "priority", "category", "type", "account", "opportunity"):
        table.add_column(column)
    table.add_column("updated")
    table.add_column("v", justify="right")
    for i in insights:
        table.add_row(
            i.insight_id,
            i.effective_status().value,
            i.priority.value,
            i.category,
            i.type,
            i.account_id,
            i.opportunity_id or "-",
            _when(i.updated_at),
            str(i.version),
        )
    _console().print(table)


@insights_app.command("show")
def show(insight_id: str, as_json: JsonOption = False) -> None:
    """One insight with its audit trail."""
    repo = _repo()
    insight = _or_exit(lambda: repo.get(insight_id))
    audit = repo.audit(insight_id)
    if as_json:
        _print_json({**_as_dict(insight), "audit": [a.model_dump(mode="json") for a in audit]})
        return
    console = _console()
    console.print(
        f"[bold]{escape(insight.title)}[/bold]  ({insight.insight_id}, version {insight.version})"
    )
    console.print(escape(insight.description))
    console.print(
        f"status [bold]{insight.effective_status().value}[/bold]  priority {insight.priority.value}"
        f"  category {insight.category}/{insight.type}  confidence {insight.confidence:.2f}"
    )
    console.print(
        f"subject {insight.account_id} / {insight.opportunity_id or '-'}  "
        f"request {insight.request_id}  expires {_when(insight.expires_at)}"
    )
    for rec in insight.recommended_actions:
        line = f"  -> [{rec.get('priority')}] {rec.get('action')}: {rec.get('description')}"
        console.print(escape(line))
    for taken in insight.actions_taken:
        line = f"  done {taken.get('channel')} -> {taken.get('destination')}: {taken.get('status')}"
        console.print(escape(line))
    table = Table(title="audit trail")
    for column in ("at", "actor", "action", "from", "to", "note", "changed"):
        table.add_column(column)
    for a in audit:
        table.add_row(
            _when(a.at),
            a.actor,
            a.action,
            a.from_status or "-",
            a.to_status,
            a.note or "",
            ", ".join(a.changes),
        )
    console.print(table)


def _transition_command(action: str, help_text: str) -> None:
    def command(
        insight_id: str,
        note: NoteOption = None,
        actor: ActorOption = "cli",
        expected_version: VersionOption = None,
        as_json: JsonOption = False,
    ) -> None:
        repo = _repo()
        insight = _or_exit(
            lambda: repo.transition(insight_id, action, actor, note, expected_version)
        )
        if as_json:
            _print_json(_as_dict(insight))
        else:
            _console().print(
                f"{insight.insight_id}: {insight.status.value} (version {insight.version})"
            )

    command.__doc__ = help_text
    insights_app.command(action)(command)


_transition_command("ack", "Acknowledge an open insight.")
_transition_command("start", "Start work on an open or acknowledged insight.")
_transition_command("resolve", "Resolve an acknowledged or in-progress insight.")
_transition_command("dismiss", "Dismiss an insight that is still open.")


@insights_app.command("expire")
def expire(as_json: JsonOption = False) -> None:
    """Mark open insights past their expiry as expired."""
    expired = _repo().expire_due()
    if as_json:
        _print_json([_as_dict(i) for i in expired])
    else:
        _console().print(f"{len(expired)} insight(s) expired")


def _as_dict(insight: Insight) -> dict[str, Any]:
    return {**insight.model_dump(mode="json"), "effective_status": insight.effective_status()}


def _or_exit(call: Callable[[], Insight]) -> Insight:
    try:
        return call()
    except InsightError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
