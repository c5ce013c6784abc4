"""`revops rules validate PATH`: check rule files, print every problem with its location.

A rule family registers its kind when its module is imported; this command knows every
family of the product because it imports them here, by name (nothing is found on disk).
A new family adds its module to `RULE_FAMILIES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import services.common.stages
import services.data_agent.warehouse.mapping
import services.decision_agent.consumption.rule_models
import services.decision_agent.conversation.rule_models
import services.decision_agent.deal_quality.rule_models
import services.decision_agent.evaluation.rule_models
import services.decision_agent.prompts.rule_models
import services.decision_agent.renewal.rule_models
from services.common.rulefiles import rule_file_paths
from services.common.rulefiles import validate_rules_dir as validate_with_registered_kinds

#: The modules whose import registers the product's rule kinds.
RULE_FAMILIES = (
    services.common.stages,
    services.data_agent.warehouse.mapping,
    services.decision_agent.consumption.rule_models,
    services.decision_agent.conversation.rule_models,
    services.decision_agent.deal_quality.rule_models,
    services.decision_agent.evaluation.rule_models,
    services.decision_agent.prompts.rule_models,
    services.decision_agent.renewal.rule_models,
)


def validate_rules_dir(path: Path) -> list[str]:
    """Every problem of every rule file below `path`, checked against every product family."""
    return validate_with_registered_kinds(path)


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
