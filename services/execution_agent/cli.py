"""`revops insights ...`: list, show and move insights through their lifecycle.

Registered lazily with the root CLI (services/cli/main.py). Ids are never cut in a table
(they are what a person types next), and every command taking an id accepts any
unambiguous prefix of it.
"""

from __future__ import annotations

import csv
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from services.common.command_line import fail
from services.execution_agent.insights import (
    Insight,
    InsightError,
    InsightNotFoundError,
    InsightRepository,
    InsightStatus,
)
from services.execution_agent.store import open_store

if TYPE_CHECKING:
    from rich.console import Console

insights_app = typer.Typer(
    help="Insights: list, show, ack, start, resolve, dismiss; export to the warehouse."
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV (one row per insight).")]
IdArgument = Annotated[
    str, typer.Argument(help="Insight id, or any unambiguous start of it (see `insights list`).")
]
NoteOption = Annotated[str | None, typer.Option("--note", help="Why (kept in the audit trail).")]
ActorOption = Annotated[str, typer.Option("--actor", envvar="USER", help="Who does it.")]
VersionOption = Annotated[
    int | None,
    typer.Option("--expected-version", help="Refuse if the insight changed since this version."),
]

# The table: (header, value). `type` is the machine name the analysis gave the finding,
# `title` the words `insights show` leads with; both appear in both places, as does the
# subject's name. The subject is the deal when there is one, else the account (the CSV and
# JSON carry both). The title comes last: it is what gives way on a narrow terminal.
COLUMNS: list[tuple[str, Callable[[Insight], str]]] = [
    ("id", lambda i: i.insight_id),
    ("status", lambda i: i.effective_status().value),
    ("priority", lambda i: i.priority.value),
    ("type", lambda i: i.type),
    ("subject", lambda i: i.opportunity_id or i.account_id),
    ("updated", lambda i: i.updated_at.strftime("%m-%d %H:%M")),
    ("v", lambda i: str(i.version)),
    ("title", lambda i: " - ".join(filter(None, (i.title, subject_name(i))))),
]
CSV_COLUMNS: list[tuple[str, Callable[[Insight], str]]] = [
    ("id", lambda i: i.insight_id),
    ("status", lambda i: i.effective_status().value),
    ("priority", lambda i: i.priority.value),
    ("category", lambda i: i.category),
    ("type", lambda i: i.type),
    ("title", lambda i: i.title),
    ("account_id", lambda i: i.account_id),
    ("account_name", lambda i: i.payload.get("account_name") or ""),
    ("opportunity_id", lambda i: i.opportunity_id or ""),
    ("opportunity_name", lambda i: i.payload.get("opportunity_name") or ""),
    ("created_at", lambda i: i.created_at.isoformat()),
    ("updated_at", lambda i: i.updated_at.isoformat()),
    ("version", lambda i: str(i.version)),
]
# What may be shortened (with "...") to fit a terminal; ids never are.
SHORTENABLE = ("title",)
SHORTEST = 16


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
    return InsightRepository(open_store(_state.db))


def _console() -> Console:
    from rich.console import Console

    return Console()


def _print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def subject_name(insight: Insight) -> str | None:
    """The deal's or account's display name, when the analysis carried one."""
    payload = insight.payload
    return payload.get("opportunity_name") or payload.get("account_name")


def _subject(insight: Insight) -> str:
    account = insight.account_id
    if name := insight.payload.get("account_name"):
        account = f"{name} ({account})"
    if insight.opportunity_id is None:
        return account
    deal = insight.opportunity_id
    if name := insight.payload.get("opportunity_name"):
        deal = f"{name} ({deal})"
    return f"{account} / {deal}"


@insights_app.command("list")
def list_insights(
    status: Annotated[
        str | None,
        typer.Option("--status", help=", ".join(s.value for s in InsightStatus)),
    ] = None,
    category: Annotated[str | None, typer.Option("--category")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Account id.")] = None,
    since: Annotated[
        datetime | None, typer.Option("--since", help="Updated at or after (ISO date/time).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """List insights, newest first."""
    if status is not None and status not in {s.value for s in InsightStatus}:
        known = ", ".join(s.value for s in InsightStatus)
        raise fail(f"unknown status {status!r} for --status; use one of {known}", code=2)
    insights = _repo().list(
        status=status, category=category, account_id=account, since=since, limit=limit
    )
    if as_json:
        _print_json([_as_dict(i) for i in insights])
    elif as_csv:
        _print_csv(insights)
    else:
        _print_table(insights)


def _print_csv(insights: Sequence[Insight]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([header for header, _ in CSV_COLUMNS])
    writer.writerows([[value(i) for _, value in CSV_COLUMNS] for i in insights])


def _print_table(insights: Sequence[Insight]) -> None:
    """Aligned plain text, laid out here rather than by rich: rich fits a table to the
    terminal by cutting any column (ids included) and renders ~1 ms per row; this list is
    read and typed from, and should come up at once."""
    rows = [[value(i) for _, value in COLUMNS] for i in insights]
    headers = [header for header, _ in COLUMNS]
    natural = {h: max([len(h), *(len(row[n]) for row in rows)]) for n, h in enumerate(headers)}
    widths = _fit(natural, sys.stdout.isatty() and shutil.get_terminal_size().columns)
    lines = [f"{len(insights)} insight(s)", _line(headers, headers, widths)]
    lines += [_line(headers, row, widths) for row in rows]
    typer.echo("\n".join(lines))


def _line(headers: Sequence[str], cells: Sequence[str], widths: dict[str, int]) -> str:
    out = []
    for header, cell in zip(headers, cells, strict=True):
        width = widths[header]
        if len(cell) > width:  # only shortenable columns are ever narrower than a cell
            cell = cell[: width - 1] + "\u2026"
        out.append(cell.rjust(width) if header == "v" else cell.ljust(width))
    return "  ".join(out).rstrip()


def _overhead(columns: int) -> int:
    """What the table adds around its cells: a space each side, none at the edges."""
    return 2 * (columns - 1)


def _fit(natural: dict[str, int], terminal: int | bool) -> dict[str, int]:
    """Column widths: every column at its natural width, except that on a terminal too
    narrow for that the title and name give up room (never below SHORTEST). Ids keep their
    width even then; the line wraps in the terminal rather than cut one."""
    if not terminal:
        return dict(natural)
    fixed = sum(w for h, w in natural.items() if h not in SHORTENABLE)
    room = int(terminal) - fixed - _overhead(len(natural))
    wanted = sum(natural[h] for h in SHORTENABLE)
    if room >= wanted:
        return dict(natural)
    return {
        h: max(min(w, SHORTEST), w * room // wanted) if h in SHORTENABLE else w
        for h, w in natural.items()
    }


@insights_app.command("show")
def show(insight_id: IdArgument, as_json: JsonOption = False) -> None:
    """One insight with its audit trail."""
    from rich.markup import escape
    from rich.table import Table

    repo = _repo()
    insight = _or_exit(lambda: repo.get(_resolve(repo, insight_id)))
    audit = repo.audit(insight.insight_id)
    if as_json:
        _print_json({**_as_dict(insight), "audit": [a.model_dump(mode="json") for a in audit]})
        return
    console = _console()
    console.print(
        f"[bold]{escape(insight.title)}[/bold] ({escape(insight.type)})  "
        f"{insight.insight_id}, version {insight.version}",
        soft_wrap=True,
    )
    console.print(escape(insight.description))
    console.print(
        f"status [bold]{insight.effective_status().value}[/bold]  priority {insight.priority.value}"
        f"  category {insight.category}  type {insight.type}  confidence {insight.confidence:.2f}"
    )
    console.print(
        escape(
            f"subject {_subject(insight)}  request {insight.request_id}  "
            f"expires {_when(insight.expires_at)}"
        ),
        soft_wrap=True,
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
            escape(a.actor),
            a.action,
            a.from_status or "-",
            a.to_status,
            escape(a.note or ""),
            ", ".join(a.changes),
        )
    console.print(table)


def _transition_command(action: str, help_text: str) -> None:
    def command(
        insight_id: IdArgument,
        note: NoteOption = None,
        actor: ActorOption = "cli",
        expected_version: VersionOption = None,
        as_json: JsonOption = False,
    ) -> None:
        repo = _repo()
        insight = _or_exit(
            lambda: repo.transition(
                _resolve(repo, insight_id), action, actor, note, expected_version
            )
        )
        if as_json:
            _print_json(_as_dict(insight))
        else:
            typer.echo(f"{insight.insight_id}: {insight.status.value} (version {insight.version})")

    command.__doc__ = help_text
    insights_app.command(action)(command)


_transition_command("ack", "Acknowledge an open insight.")
_transition_command("start", "Start work on an open or acknowledged insight.")
_transition_command("resolve", "Resolve an acknowledged or in-progress insight.")
_transition_command("dismiss", "Dismiss an insight that is still open.")


@insights_app.command("export")
def export(
    once: Annotated[
        bool, typer.Option("--once", help="Export what is pending, then exit (default: keep on).")
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option(
            min=0.1, help="Seconds between runs (default: REVOPS_INSIGHTS_EXPORT_INTERVAL_S)."
        ),
    ] = None,
    path: Annotated[
        Path | None,
        typer.Option(help="Embedded export file (default: insights.duckdb in the state dir)."),
    ] = None,
) -> None:
    """Export insight changes to the warehouse: revops_ai_insights and its audit trail."""
    from services.common.settings import get_settings
    from services.execution_agent.warehouse_export.command import export_command

    settings = get_settings()
    export_command(
        open_store(_state.db),
        settings,
        once=once,
        interval_s=interval or settings.insights_export_interval_s or 60.0,
        path=path,
    )


@insights_app.command("expire")
def expire(as_json: JsonOption = False) -> None:
    """Mark open insights past their expiry as expired."""
    expired = _repo().expire_due()
    if as_json:
        _print_json([_as_dict(i) for i in expired])
    else:
        typer.echo(f"{len(expired)} insight(s) expired")


def _as_dict(insight: Insight) -> dict[str, Any]:
    return {**insight.model_dump(mode="json"), "effective_status": insight.effective_status()}


def _resolve(repo: InsightRepository, typed: str) -> str:
    try:
        return repo.resolve_id(typed)
    except InsightNotFoundError:
        raise InsightError(
            f"no insight id is or starts with {typed!r}; `revops insights list` shows them"
        ) from None


def _or_exit(call: Callable[[], Insight]) -> Insight:
    try:
        return call()
    except InsightError as exc:
        raise fail(str(exc)) from exc
