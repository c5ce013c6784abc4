"""`revops trigger ...`: publish a raw trigger to `revops.triggers`, optionally wait for its
outcome. Any other Kafka client publishing the same JSON gets the same result.

`--wait` ends with the flow's summary line (its JSON with `--json`), or, when the pipeline
rejected the request (unknown account, invalid trigger), with the dead letter's code and
reason as soon as it is written: the sender never waits for a flow output that cannot come.

Top-level imports stay light (typer and the standard library): `revops --help` imports this
module, so pydantic models and Kafka clients are imported inside the commands.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from contracts import AnalysisType, RawTrigger
    from contracts.trigger import TriggerType
    from services.common.flows import FlowOutcome, PublishedTrigger

trigger_app = typer.Typer(help="Publish analysis triggers.", no_args_is_help=True)

# How far back a scheduled trigger's request id is looked for (its default id names the day).
LOOKBACK = timedelta(days=1)
WAIT_HELP = "Wait for the flow's outcome: its summary line, or why it was rejected"
JSON_HELP = "With --wait: print the whole flow output (or the rejection) as JSON"


def _send(trigger: RawTrigger, wait: bool, timeout_s: float, as_json: bool = False) -> None:
    from services.cli.kafka_command import run_with_kafka
    from services.common.flows import FlowWatcher, publish_triggers
    from services.common.settings import get_settings

    settings = get_settings()

    async def go() -> FlowOutcome | None:
        watcher = FlowWatcher(settings, rejections=True)
        if wait:
            await watcher.start()
        try:
            await publish_triggers(settings, [trigger])
            typer.echo(f"published request_id={trigger.request_id} to {settings.topics.triggers}")
            if not wait:
                return None
            found = await watcher.wait_for([trigger.request_id or ""], timeout_s)
            return found.get(trigger.request_id or "")
        finally:
            await watcher.stop()

    outcome = run_with_kafka(settings, go())
    if wait:
        _print_outcome(outcome, timeout_s, as_json)


def _print_outcome(outcome: FlowOutcome | None, timeout_s: float, as_json: bool) -> None:
    import orjson

    from contracts import FlowOutput
    from services.cli.flow_lines import describe_flow, describe_rejection

    if outcome is None:
        typer.echo(f"no flow output within {timeout_s:.0f} s", err=True)
        raise typer.Exit(1)
    if isinstance(outcome, FlowOutput):
        typer.echo(describe_flow(outcome))
        if as_json:
            document = outcome.model_dump(mode="json")
            typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(describe_rejection(outcome), err=True)
    if as_json:
        rejected = {
            "request_id": outcome.request_id,
            "status": "rejected",
            "code": outcome.code,
            "reason": outcome.reason,
            "dead_letter": outcome.dlq_position,
        }
        typer.echo(orjson.dumps(rejected, option=orjson.OPT_INDENT_2).decode())
    raise typer.Exit(1)


def _trigger(
    analysis: AnalysisType,
    account_id: str | None,
    opportunity_id: str | None,
    request_id: str | None,
    trigger_type: TriggerType | None = None,
) -> RawTrigger:
    from contracts import RawTrigger
    from contracts.trigger import TriggerParameters, TriggerType

    return RawTrigger(
        trigger_type=trigger_type or TriggerType.MANUAL,
        parameters=TriggerParameters(
            account_id=account_id, opportunity_id=opportunity_id, analysis_type=analysis
        ),
        request_id=request_id or f"req-{uuid.uuid4()}",
        requester="cli",
    )


@trigger_app.command("deal-quality")
def deal_quality(
    account_id: str = typer.Option(..., "--account-id"),
    opportunity_id: str = typer.Option(..., "--opportunity-id"),
    request_id: str | None = typer.Option(None, "--request-id", help="Same id = same request"),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(60.0, "--timeout"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Assess one opportunity's deal quality."""
    from contracts import AnalysisType

    trigger = _trigger(AnalysisType.DEAL_QUALITY, account_id, opportunity_id, request_id)
    _send(trigger, wait, timeout, as_json)


@trigger_app.command("consumption")
def consumption(
    account_id: str = typer.Option(..., "--account-id"),
    request_id: str | None = typer.Option(None, "--request-id"),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(60.0, "--timeout"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Analyse one customer's consumption, health and churn risk."""
    from contracts import AnalysisType

    _send(_trigger(AnalysisType.CONSUMPTION, account_id, None, request_id), wait, timeout, as_json)


def _scheduled(
    kind: str, analysis: AnalysisType, request_id: str | None, force: bool
) -> str | None:
    """Scheduled jobs are named by their day: a CronJob retried the same day starts nothing
    new. A request id already published in the last day is said to be (the pipeline would
    skip it), and `--force` runs the job again under a new request id. Returns the request id
    to publish, or None when the job already ran."""
    from services.cli.kafka_command import run_with_kafka
    from services.common.flows import FLEET_KEY, find_published_trigger
    from services.common.settings import get_settings

    now = datetime.now(UTC)
    rid = request_id or f"{kind}-{now:%Y-%m-%d}"
    if force:
        rid = f"{rid}-{now:%H%M%S}"
    else:
        settings = get_settings()
        earlier = run_with_kafka(
            settings, find_published_trigger(settings, rid, FLEET_KEY, now - LOOKBACK)
        )
        if earlier is not None:
            typer.echo(_already_published(kind, rid, earlier, settings.topics.triggers))
            return None
    return rid


def _already_published(kind: str, request_id: str, earlier: PublishedTrigger, topic: str) -> str:
    at, position = earlier.published_at, f"{topic}/{earlier.partition}/{earlier.offset}"
    return (
        f"{request_id} was already triggered at {at:%Y-%m-%d %H:%M:%S} UTC ({position}): the "
        f"pipeline runs a request id once, so publishing it again would do nothing. "
        f"To run it again: revops trigger {kind} --force"
    )


@trigger_app.command("fleet-scan")
def fleet_scan(
    request_id: str | None = typer.Option(
        None, "--request-id", help="Default: fleet-scan-<UTC day>"
    ),
    force: bool = typer.Option(False, "--force", help="Run again although it ran today"),
) -> None:
    """Screen every account (set-based); a consumption flow starts for each one with news."""
    from contracts import AnalysisType
    from contracts.trigger import TriggerType

    rid = _scheduled("fleet-scan", AnalysisType.FLEET_SCAN, request_id, force)
    if rid is not None:
        _send(_trigger(AnalysisType.FLEET_SCAN, None, None, rid, TriggerType.SCHEDULED), False, 0)


@trigger_app.command("deal-review")
def deal_review(
    request_id: str | None = typer.Option(
        None, "--request-id", help="Default: deal-review-<UTC day>"
    ),
    force: bool = typer.Option(False, "--force", help="Run again although it ran today"),
    wait: bool = typer.Option(
        False,
        "--wait",
        help="Follow the review until every open deal's flow has ended (progress, then a "
        "summary line); the deals are counted in the warehouse this command is configured with",
    ),
    timeout: float = typer.Option(1800.0, "--timeout", help="With --wait: seconds to wait"),
) -> None:
    """A deal-quality flow for every open opportunity (the weekly review)."""
    from contracts import AnalysisType
    from contracts.trigger import TriggerType

    rid = _scheduled("deal-review", AnalysisType.DEAL_REVIEW, request_id, force)
    if rid is None:
        return
    trigger = _trigger(AnalysisType.DEAL_REVIEW, None, None, rid, TriggerType.SCHEDULED)
    if not wait:
        _send(trigger, False, 0)
        return
    _follow_review(trigger, _open_deal_count(), timeout)


def _open_deal_count() -> int:
    """How many flows the review will start: the data agent's own query of open deals."""
    from services.common.settings import get_settings
    from services.data_agent.app import open_opportunities
    from services.data_agent.warehouse import open_warehouse
    from services.decision_agent.rules.rule_models import load_stage_model

    warehouse = open_warehouse(get_settings())
    try:
        return len(open_opportunities(warehouse, load_stage_model()))
    finally:
        warehouse.close()


def _follow_review(trigger: RawTrigger, deals: int, timeout_s: float) -> None:
    """Publish the review and count its children's outcomes (request ids `<rid>:<deal>`)."""
    from collections import Counter

    from contracts import FlowOutput
    from services.cli.kafka_command import run_with_kafka
    from services.common.flows import FlowWatcher, publish_triggers
    from services.common.progress import Progress
    from services.common.settings import get_settings

    settings = get_settings()
    prefix = f"{trigger.request_id}:"
    ended: Counter[str] = Counter()

    async def go() -> None:
        watcher = FlowWatcher(settings, rejections=True)
        await watcher.start()
        try:
            await publish_triggers(settings, [trigger])
            typer.echo(
                f"published request_id={trigger.request_id} to {settings.topics.triggers} "
                f"({deals:,} open deal(s) to review)"
            )
            if deals == 0:
                return
            with Progress("deal review", total=deals, unit="deals") as progress:
                async for outcome in watcher.outcomes(timeout_s):
                    if not outcome.request_id.startswith(prefix):
                        continue
                    ended[outcome.status if isinstance(outcome, FlowOutput) else "rejected"] += 1
                    progress.advance()
                    if progress.done >= deals:
                        break
        finally:
            await watcher.stop()

    run_with_kafka(settings, go())
    done = sum(ended.values())
    parts = ", ".join(f"{n:,} {status}" for status, n in sorted(ended.items())) or "none"
    typer.echo(f"{trigger.request_id}: {done:,} of {deals:,} deal flow(s) ended ({parts})")
    if done < deals:
        typer.echo(
            f"error: {deals - done:,} flow(s) had not ended within {timeout_s:.0f} s", err=True
        )
        raise typer.Exit(1)
