"""`revops trigger ...`: publish a raw trigger to `revops.triggers`, optionally wait for its
flow output. Any other Kafka client publishing the same JSON gets the same result."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import orjson
import typer

from contracts import AnalysisType, FlowOutput, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from services.common.flows import FlowWatcher, publish_triggers
from services.common.settings import get_settings

trigger_app = typer.Typer(help="Publish analysis triggers.", no_args_is_help=True)


def _send(trigger: RawTrigger, wait: bool, timeout_s: float) -> None:
    settings = get_settings()

    async def go() -> FlowOutput | None:
        watcher = FlowWatcher(settings)
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

    flow = asyncio.run(go())
    if wait:
        if flow is None:
            typer.echo(f"no flow output within {timeout_s:.0f} s", err=True)
            raise typer.Exit(1)
        typer.echo(orjson.dumps(flow.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())


def _trigger(
    analysis: AnalysisType,
    account_id: str | None,
    opportunity_id: str | None,
    request_id: str | None,
    trigger_type: TriggerType = TriggerType.MANUAL,
) -> RawTrigger:
    return RawTrigger(
        trigger_type=trigger_type,
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
    wait: bool = typer.Option(False, "--wait", help="Print the flow output when it arrives"),
    timeout: float = typer.Option(60.0, "--timeout"),
) -> None:
    """Assess one opportunity's deal quality."""
    _send(
        _trigger(AnalysisType.DEAL_QUALITY, account_id, opportunity_id, request_id), wait, timeout
    )


@trigger_app.command("consumption")
def consumption(
    account_id: str = typer.Option(..., "--account-id"),
    request_id: str | None = typer.Option(None, "--request-id"),
    wait: bool = typer.Option(False, "--wait"),
    timeout: float = typer.Option(60.0, "--timeout"),
) -> None:
    """Analyse one customer's consumption, health and churn risk."""
    _send(_trigger(AnalysisType.CONSUMPTION, account_id, None, request_id), wait, timeout)


def _scheduled_id(kind: str, request_id: str | None) -> str:
    """Scheduled jobs are named by their day: a CronJob retried the same day starts nothing new."""
    return request_id or f"{kind}-{datetime.now(UTC):%Y-%m-%d}"


@trigger_app.command("fleet-scan")
def fleet_scan(
    request_id: str | None = typer.Option(
        None, "--request-id", help="Default: fleet-scan-<UTC day>"
    ),
) -> None:
    """Screen every account (set-based); a consumption flow starts for each one with news."""
    rid = _scheduled_id("fleet-scan", request_id)
    _send(_trigger(AnalysisType.FLEET_SCAN, None, None, rid, TriggerType.SCHEDULED), False, 0)


@trigger_app.command("deal-review")
def deal_review(
    request_id: str | None = typer.Option(
        None, "--request-id", help="Default: deal-review-<UTC day>"
    ),
) -> None:
    """A deal-quality flow for every open opportunity (the weekly review)."""
    rid = _scheduled_id("deal-review", request_id)
    _send(_trigger(AnalysisType.DEAL_REVIEW, None, None, rid, TriggerType.SCHEDULED), False, 0)
