"""`revops rules validate PATH`: check rule files, print every problem with its location."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.decision_agent.rules.loader import rule_file_paths, validate_rules_dir

rules_app = typer.Typer(
    help="Business-rule files (YAML rubrics, thresholds, lexicons).", no_args_is_help=True
)


@rules_app.callback()
def _group() -> None:
    """Keep `validate` a sub-command even while it is the only one."""


@rules_app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="A rule file or a folder of rule files.")],
) -> None:
    """Validate rule files; exit 1 and list every problem (file:line:column) if any."""
    if not path.exists():
        typer.echo(f"{path}: no such file or folder", err=True)
        raise typer.Exit(1)
    problems = validate_rules_dir(path)
    for problem in problems:
        typer.echo(problem)
    if problems:
        typer.echo(f"{len(problems)} problem(s) found", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(rule_file_paths(path))} rule file(s) OK")
