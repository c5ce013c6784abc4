"""Replaying dead letters to the topic they failed on, oldest first.

The original key and value go back unchanged, so the envelope keeps its idempotency key: a
consumer that already processed it skips it (dead-lettered records are not marked processed,
so a fixed-up replay is processed exactly once). The replay log keeps a DLQ message from
being replayed twice unless forced. A crash between Kafka's acknowledgement and the log
entry means the next run replays that message again, which the idempotency key makes
harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from aiokafka import AIOKafkaProducer
from aiolimiter import AsyncLimiter

from services.common.kafka_clients import start_or_close
from services.common.kafka_security import aiokafka_options
from services.common.settings import Settings
from services.dlq.headers import ReplayHeaders
from services.dlq.messages import DeadLetter
from services.dlq.reader import read_dead_letters
from services.dlq.replay_log import ReplayLog
from services.dlq.selection import Selection

# Re-signing these would vouch, as `dlq_replay`, for a record nobody could authenticate.
NEVER_REPLAYED_PREFIX = "AUTHENTICATION_FAILED"


class Action(StrEnum):
    REPLAYED = "replayed"
    WOULD_REPLAY = "would replay"
    ALREADY_REPLAYED = "already replayed"
    NOT_REPLAYABLE = "not replayable"


@dataclass(frozen=True)
class Outcome:
    message: DeadLetter
    action: Action
    detail: str = ""


@dataclass
class ReplayReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for o in self.outcomes if o.action is action)


@dataclass(frozen=True)
class ReplayOptions:
    limit: int | None = None
    rate_per_s: float | None = None
    dry_run: bool = False
    force: bool = False


def not_replayable(message: DeadLetter) -> str | None:
    if message.code.startswith(NEVER_REPLAYED_PREFIX):
        return "failed authentication: investigate, never re-sign"
    return message.unreplayable_reason()


async def replay(
    settings: Settings,
    selection: Selection,
    options: ReplayOptions,
    log: ReplayLog,
    on_outcome: Callable[[Outcome], None] = lambda _: None,
    on_total: Callable[[int], None] = lambda _: None,
) -> ReplayReport:
    """`on_total`: told how many outcomes to expect once the selection is known."""
    messages = selection.apply(await read_dead_letters(settings, selection.topics))
    done_before = log.replayed(m.id for m in messages)
    report = ReplayReport()

    def note(outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        on_outcome(outcome)

    todo: list[DeadLetter] = []
    for message in messages:
        reason = not_replayable(message)
        if reason is not None:
            note(Outcome(message, Action.NOT_REPLAYABLE, reason))
        elif message.id in done_before and not options.force:
            note(Outcome(message, Action.ALREADY_REPLAYED, "use --force to replay again"))
        elif options.limit is None or len(todo) < options.limit:
            todo.append(message)
    on_total(len(report.outcomes) + len(todo))
    if options.dry_run:
        for message in todo:
            note(Outcome(message, Action.WOULD_REPLAY, f"-> {message.original_topic}"))
        return report
    if todo:
        await _produce(settings, todo, options, log, note)
    return report


async def _produce(
    settings: Settings,
    messages: list[DeadLetter],
    options: ReplayOptions,
    log: ReplayLog,
    note: Callable[[Outcome], None],
) -> None:
    headers = ReplayHeaders(settings)
    # One token per 1/rate seconds, no burst: a replay should not flood a recovering service.
    limiter = AsyncLimiter(1, 1 / options.rate_per_s) if options.rate_per_s else None
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="revops-dlq-replay",
        acks="all",
        enable_idempotence=True,
        **aiokafka_options(settings),
    )
    await start_or_close(producer, settings)
    try:
        for message in messages:
            topic = message.original_topic
            key, value = message.original_key(), message.original_value()
            assert topic is not None and value is not None
            if limiter is not None:
                await limiter.acquire()
            meta = await producer.send_and_wait(
                topic, value, key=key, headers=headers.build(message, topic, key, value)
            )
            log.record(message.id, topic, meta.partition, meta.offset, options.force)
            note(Outcome(message, Action.REPLAYED, f"-> {topic}/{meta.partition}/{meta.offset}"))
    finally:
        await producer.stop()
