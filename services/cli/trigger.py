"""`revops trigger ...`: publish a raw trigger to `revops.triggers`, optionally wait for its
outcome. Any other Kafka client publishing the same JSON gets the same result.

`--wait` ends with the flow's summary line (its JSON with `--json`), or, when the pipeline
rejected the request (unknown account, invalid trigger), with the dead letter's code and
reason as soon as it is written: the sender never waits for a flow output that cannot come.

Top-level imports stay light (typer, the standard library, the analysis-type registry that
names the commands): `revops --help` imports this module, so the message models and Kafka
clients are imported inside the commands.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import typer

from contracts.analysis_types import ANALYSIS_TYPES, AnalysisTypeSpec

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
    from services.common.flows import FlowWatcher, publish_triggers
    from services.common.kafka_command import run_with_kafka
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


def _scheduled(kind: str, request_id: str | None, force: bool) -> str | None:
    """Scheduled jobs are named by their day: a CronJob retried the same day starts nothing
    new. A request id already published in the last day is said to be (the pipeline would
    skip it), and `--force` runs the job again under a new request id. Returns the request id
    to publish, or None when the job already ran."""
    from services.common.flows import FLEET_KEY, find_published_trigger
    from services.common.kafka_command import run_with_kafka
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


def _subject_command(spec: AnalysisTypeSpec) -> Callable[..., None]:
    """`revops trigger <type>`: one subject (an account, and a deal when the type needs one)."""
    analysis = spec.analysis_type
    if spec.needs_opportunity:

        def deal_command(
            account_id: str = typer.Option(..., "--account-id"),
            opportunity_id: str = typer.Option(..., "--opportunity-id"),
            request_id: str | None = typer.Option(
                None, "--request-id", help="Same id = same request"
            ),
            wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
            timeout: float = typer.Option(60.0, "--timeout"),
            as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
        ) -> None:
            trigger = _trigger(analysis, account_id, opportunity_id, request_id)
            _send(trigger, wait, timeout, as_json)

        return deal_command

    def account_command(
        account_id: str = typer.Option(..., "--account-id"),
        request_id: str | None = typer.Option(None, "--request-id", help="Same id = same request"),
        wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
        timeout: float = typer.Option(60.0, "--timeout"),
        as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    ) -> None:
        _send(_trigger(analysis, account_id, None, request_id), wait, timeout, as_json)

    return account_command


def _job_command(spec: AnalysisTypeSpec) -> Callable[..., None]:
    """`revops trigger <job>`: a scheduled job, named by its day (see `_scheduled`)."""

    def job_command(
        request_id: str | None = typer.Option(
            None, "--request-id", help=f"Default: {spec.command}-<UTC day>"
        ),
        force: bool = typer.Option(False, "--force", help="Run again although it ran today"),
        wait: bool = typer.Option(
            False,
            "--wait",
            help="Follow the job until every flow it starts has ended (progress, then a "
            "summary line); its subjects are counted in the warehouse this command is "
            "configured with",
        ),
        timeout: float = typer.Option(1800.0, "--timeout", help="With --wait: seconds to wait"),
    ) -> None:
        from contracts.trigger import TriggerType

        rid = _scheduled(spec.command, request_id, force)
        if rid is None:
            return
        trigger = _trigger(spec.analysis_type, None, None, rid, TriggerType.SCHEDULED)
        if not wait:
            _send(trigger, False, 0)
            return
        _follow_job(spec, trigger, _subject_count(spec), timeout)

    return job_command


def _subject_count(spec: AnalysisTypeSpec) -> int:
    """How many flows the job will start: the data agent's own subject finder."""
    from services.common.settings import get_settings
    from services.data_agent.builders import SUBJECT_FINDERS
    from services.data_agent.datasets import DatasetRepository
    from services.data_agent.warehouse import open_warehouse

    warehouse = open_warehouse(get_settings())
    try:
        return len(SUBJECT_FINDERS[spec.analysis_type](DatasetRepository(warehouse)))
    finally:
        warehouse.close()


def _follow_job(spec: AnalysisTypeSpec, trigger: RawTrigger, total: int, timeout_s: float) -> None:
    """Publish the job and count its children's outcomes (request ids `<rid>:<subject>`)."""
    from collections import Counter

    from contracts import FlowOutput
    from services.common.flows import FlowWatcher, publish_triggers
    from services.common.kafka_command import run_with_kafka
    from services.common.progress import Progress
    from services.common.settings import get_settings

    settings = get_settings()
    prefix = f"{trigger.request_id}:"
    ended: Counter[str] = Counter()
    child = ANALYSIS_TYPES[spec.fans_out_to] if spec.fans_out_to else spec
    noun = "deal" if child.needs_opportunity else "account"
    subjects = "open deal(s)" if child.needs_opportunity else "account(s)"

    async def go() -> None:
        watcher = FlowWatcher(settings, rejections=True)
        await watcher.start()
        try:
            await publish_triggers(settings, [trigger])
            typer.echo(
                f"published request_id={trigger.request_id} to {settings.topics.triggers} "
                f"({total:,} {subjects} to review)"
            )
            if total == 0:
                return
            label = spec.command.replace("-", " ")
            with Progress(label, total=total, unit=f"{noun}s") as progress:
                async for outcome in watcher.outcomes(timeout_s):
                    if not outcome.request_id.startswith(prefix):
                        continue
                    ended[outcome.status if isinstance(outcome, FlowOutput) else "rejected"] += 1
                    progress.advance()
                    if progress.done >= total:
                        break
        finally:
            await watcher.stop()

    run_with_kafka(settings, go())
    done = sum(ended.values())
    parts = ", ".join(f"{n:,} {status}" for status, n in sorted(ended.items())) or "none"
    typer.echo(f"{trigger.request_id}: {done:,} of {total:,} {noun} flow(s) ended ({parts})")
    if done < total:
        typer.echo(
            f"error: {total - done:,} flow(s) had not ended within {timeout_s:.0f} s", err=True
        )
        raise typer.Exit(1)


# One command per analysis type of the contracts (docs/extending.md): a new type gets its
# `revops trigger` command without an edit here.
for _spec in ANALYSIS_TYPES.values():
    _command = _job_command(_spec) if _spec.is_job else _subject_command(_spec)
    trigger_app.command(_spec.command, help=_spec.help)(_command)
