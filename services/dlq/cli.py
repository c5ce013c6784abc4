"""`revops dlq list | show | replay`: look at dead letters and send them back.

Registered by the CLI root as `app.add_typer(dlq_app, name="dlq")`. Top-level imports stay
light (`revops --help` imports this module): Kafka clients and models load in the commands.
While Kafka is down a command says so in one line (services.cli.kafka_command).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from services.common.progress import Progress
    from services.common.settings import Settings
    from services.dlq.messages import DeadLetter
    from services.dlq.replay import Outcome
    from services.dlq.replay_log import ReplayEntry, ReplayLog
    from services.dlq.selection import Selection

dlq_app = typer.Typer(help="Dead-letter queues: list, show and replay.", no_args_is_help=True)

TopicOption = Annotated[
    str | None, typer.Option("--topic", help="A DLQ topic or the topic it belongs to")
]
CodeOption = Annotated[str | None, typer.Option("--code", help="Error code, e.g. INVALID_PAYLOAD")]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Failed at or after (ISO 8601; UTC if no zone)")
]


def replay_log_for(settings: Settings) -> ReplayLog:
    from services.dlq.replay_log import ReplayLog

    return ReplayLog(settings.resolved_state_dir / "dlq-replays.db")


def parse_rate(text: str | None) -> float | None:
    """`5`, `5/s` or `0.5/s` -> records per second."""
    if text is None:
        return None
    number = text.strip().removesuffix("/s")
    try:
        rate = float(number)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a rate like 5/s") from None
    if rate <= 0:
        raise typer.BadParameter("the rate must be above 0")
    return rate


def _selection(topic: str | None, code: str | None, since: str | None) -> Selection:
    from services.dlq.selection import Selection, parse_since

    try:
        return Selection(topic=topic, code=code, since=parse_since(since))
    except ValueError as exc:
        raise typer.BadParameter(f"--since: {exc}") from None


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def message_line(message: DeadLetter) -> str:
    return "  ".join(
        [
            message.id,
            _time(message.failed_at),
            message.code,
            message.original_position,
            message.request_id or "-",
            message.short_message,
        ]
    )


@dlq_app.command("list")
def list_command(
    topic: TopicOption = None, since: SinceOption = None, code: CodeOption = None
) -> None:
    """Counts per DLQ topic and error code, then one line per message (oldest first)."""
    from services.cli.kafka_command import run_with_kafka
    from services.common.settings import get_settings
    from services.dlq.reader import read_dead_letters
    from services.dlq.selection import counts

    settings = get_settings()
    selection = _selection(topic, code, since)
    messages = selection.apply(
        run_with_kafka(settings, read_dead_letters(settings, selection.topics))
    )
    if not messages:
        typer.echo("no dead letters")
        return
    typer.echo(f"{'COUNT':>6}  {'DLQ TOPIC':<40}  CODE")
    for (dlq_topic, error_code), number in sorted(counts(messages).items()):
        typer.echo(f"{number:>6}  {dlq_topic:<40}  {error_code}")
    typer.echo(f"{len(messages):>6}  total\n")
    typer.echo("ID  FAILED AT  CODE  ORIGINAL  REQUEST  MESSAGE")
    for message in messages:
        typer.echo(message_line(message))


def describe(message: DeadLetter, history: list[ReplayEntry]) -> dict[str, Any]:
    """What `show` prints: the error envelope's parts and the decoded original value."""
    shown: dict[str, Any] = {"id": message.id, "failed_at": _time(message.failed_at)}
    if message.envelope is None:
        shown["problem"] = message.problem
        shown["raw"] = (message.value or b"").decode("utf-8", "replace")
        return shown
    envelope = message.envelope.model_dump(mode="json")
    shown |= {
        "error": envelope["error"],
        "attempts": message.envelope.dead_letter.attempts,
        "original_position": message.original_position,
        "dead_letter": envelope["dead_letter"],
        "metadata": envelope["metadata"],
        "original_headers": envelope["original"]["headers"],
        "payload": _payload(message),
        "replays": [
            {
                "at": _time(datetime.fromtimestamp(e.replayed_at, UTC)),
                "to": e.target_topic,
                "partition": e.target_partition,
                "offset": e.target_offset,
                "forced": e.forced,
            }
            for e in history
        ],
    }
    return shown


def _payload(message: DeadLetter) -> Any:
    import orjson

    value = message.original_value()
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value.decode("utf-8", "replace")


@dlq_app.command("show")
def show_command(
    message_id: Annotated[str, typer.Argument(help="<dlq topic>:<partition>:<offset>")],
) -> None:
    """The error envelope (error, attempts, original position) and the decoded payload."""
    import orjson

    from services.cli.kafka_command import run_with_kafka
    from services.common.settings import get_settings
    from services.dlq.reader import DeadLetterNotFoundError, read_dead_letter

    settings = get_settings()
    try:
        message = run_with_kafka(settings, read_dead_letter(settings, message_id))
    except (DeadLetterNotFoundError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    log = replay_log_for(settings)
    try:
        history = log.history(message.id)
    finally:
        log.close()
    typer.echo(orjson.dumps(describe(message, history), option=orjson.OPT_INDENT_2).decode())


def outcome_line(outcome: Outcome) -> str:
    detail = f"  {outcome.detail}" if outcome.detail else ""
    return f"{outcome.action.value:<16}  {message_line(outcome.message)}{detail}"


@dlq_app.command("replay")
def replay_command(
    topic: TopicOption = None,
    code: CodeOption = None,
    since: SinceOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Replay at most N")] = None,
    rate: Annotated[
        str | None, typer.Option("--rate", help="At most N records per second: 5/s")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replay messages replayed before")] = False,
) -> None:
    """Send dead letters back to their original topic (same key and value), oldest first."""
    from services.cli.kafka_command import run_with_kafka
    from services.common.progress import Progress
    from services.common.settings import get_settings
    from services.dlq.replay import Action, ReplayOptions, replay

    settings = get_settings()
    options = ReplayOptions(limit=limit, rate_per_s=parse_rate(rate), dry_run=dry_run, force=force)
    log = replay_log_for(settings)

    def outcome(progress: Progress, done: Outcome) -> None:
        progress.log(outcome_line(done))
        progress.advance()

    try:
        with Progress("dlq replay", unit="records") as progress:
            report = run_with_kafka(
                settings,
                replay(
                    settings,
                    _selection(topic, code, since),
                    options,
                    log,
                    lambda done: outcome(progress, done),
                    progress.set_total,
                ),
            )
    finally:
        log.close()
    summary = ", ".join(f"{report.count(action)} {action.value}" for action in Action)
    typer.echo(f"{'dry run: ' if dry_run else ''}{summary}")
