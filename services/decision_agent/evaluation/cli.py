"""`revops eval conversations`: precision and recall per class of the lexicon, and of the
configured model (REVOPS_MODEL_*), on the labelled call excerpts.

Heavy imports stay inside the command: `revops --help` does not load the AI layer.
"""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from services.decision_agent.evaluation.harness import ClassScore, Predictor, Report

eval_app = typer.Typer(
    help="Score extractors (lexicon or a configured model) on labelled call excerpts.",
    no_args_is_help=True,
)


class Which(StrEnum):
    LEXICON = "lexicon"
    MODEL = "model"
    ALL = "all"


@eval_app.callback()
def _group() -> None:
    """Keep `conversations` a sub-command (`revops eval conversations`)."""


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.1%}"


def _row(name: str, score: ClassScore) -> str:
    return (
        f"  {name:<22} {score.tp:>4} {score.fp:>4} {score.fn:>4}  "
        f"{_pct(score.precision)}  {_pct(score.recall)}  {_pct(score.f1)}"
    )


def render(report: Report, misses: int) -> str:
    lines = [
        f"{report.extractor}: {report.excerpts} excerpts",
        f"  {'class':<22} {'tp':>4} {'fp':>4} {'fn':>4}  precision  recall     f1",
        *(_row(name, score) for name, score in report.classes.items()),
        _row("all", report.overall),
        "  excerpts fully right, by tag: "
        + ", ".join(f"{tag} {ok}/{n}" for tag, (n, ok) in report.tags.items()),
    ]
    if report.fallbacks:
        reasons: dict[str, int] = {}
        for reason in report.fallbacks.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        lines.append(
            f"  the model did not answer {len(report.fallbacks)} excerpt(s): "
            + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
        )
    for miss in report.misses[:misses]:
        missed = ", ".join(f"{k}:{v}" for k, v in miss.missed) or "-"
        extra = ", ".join(f"{k}:{v}" for k, v in miss.extra) or "-"
        lines.append(f"  {miss.excerpt}: missed {missed}; extra {extra}")
    return "\n".join(lines)


def _predictors(which: Which) -> list[Predictor]:
    from services.common.settings import get_settings
    from services.decision_agent.ai.setup import build_ai_layer
    from services.decision_agent.evaluation.harness import LexiconPredictor, ModelPredictor

    predictors: list[Predictor] = []
    if which in (Which.LEXICON, Which.ALL):
        predictors.append(LexiconPredictor())
    if which in (Which.MODEL, Which.ALL):
        settings = get_settings()
        layer = build_ai_layer(settings)
        if layer is None:
            message = "no model configured (REVOPS_MODEL_BACKEND=none)"
            if which == Which.MODEL:
                raise ValueError(message)
            typer.echo(f"{message}: scoring the lexicon only", err=True)
        else:
            predictors.append(
                ModelPredictor(
                    layer.calls, settings.model_tokens_per_flow, settings.model_flow_deadline_s
                )
            )
    return predictors


async def _run(predictors: list[Predictor], dataset: Path, concurrency: int) -> list[Report]:
    from services.decision_agent.evaluation.harness import evaluate, load_set

    excerpts = load_set(dataset)
    reports = []
    for predictor in predictors:
        reports.append(await evaluate(predictor, excerpts, concurrency))
        reader = getattr(predictor, "reader", None)
        if reader is not None:
            await reader.gateway.close()
    return reports


@eval_app.command("conversations")
def conversations(
    extractor: Annotated[
        Which, typer.Option(help="lexicon, model (REVOPS_MODEL_*), or all that are available")
    ] = Which.ALL,
    dataset: Annotated[
        Path | None, typer.Option(help="Labelled excerpts (kind conversation_eval_set)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON")] = False,
    misses: Annotated[int, typer.Option(help="List this many excerpts it got wrong")] = 0,
    concurrency: Annotated[int, typer.Option(min=1, help="Model calls in flight")] = 4,
) -> None:
    """Precision and recall per class (objection, competitor, technical_requirement,
    stakeholder stance, next_step) on the labelled call excerpts."""
    from services.decision_agent.evaluation.harness import DEFAULT_SET
    from services.decision_agent.model.factory import ModelConfigError
    from services.decision_agent.rules.loader import RuleFileError

    try:
        predictors = _predictors(extractor)
        reports = asyncio.run(_run(predictors, dataset or DEFAULT_SET, concurrency))
    except (RuleFileError, ModelConfigError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in reports], indent=2))
        return
    typer.echo("\n\n".join(render(report, misses) for report in reports))
