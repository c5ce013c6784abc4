"""Dead letters for the operations page: a live index of every `*.dlq` topic, and replays.

The index follows the DLQ topics with a group-less consumer (nothing committed, so it never
changes what `revops dlq` sees), counts messages by topic and error code and keeps the newest
of each group, so the page renders from memory instead of reading Kafka per request.

A replay is two steps, as with `revops dlq replay --dry-run`: the dry run lists what would
be sent back; the confirmation carries a digest of that list and replays only if the
selection is still the same (else the operator reviews it again). The replay itself is the
DLQ tool's (`services.dlq.replay`): same headers, signature and replay log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka_clients import stop_consumer
from services.common.kafka_security import aiokafka_options
from services.common.settings import Settings, dlq_topic
from services.dlq.cli import replay_log_for
from services.dlq.messages import DeadLetter
from services.dlq.reader import dlq_partitions
from services.dlq.replay import Action, ReplayOptions, ReplayReport, not_replayable, replay
from services.dlq.selection import Selection

log = structlog.get_logger("console.deadletters")

KEEP_PER_GROUP = 50
DISCOVER_EVERY_S = 30.0


@dataclass(frozen=True)
class DeadLetterSummary:
    id: str
    topic: str
    code: str
    failed_at: datetime
    request_id: str | None
    original_position: str
    message: str
    unreplayable: str | None

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterSummary:
        return cls(
            letter.id,
            letter.topic,
            letter.code,
            letter.failed_at,
            letter.request_id,
            letter.original_position,
            letter.short_message,
            not_replayable(letter),
        )


@dataclass
class DeadLetterGroup:
    topic: str
    code: str
    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    recent: deque[DeadLetterSummary] = field(default_factory=lambda: deque(maxlen=KEEP_PER_GROUP))


class DeadLetterIndex:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # This stack's DLQs only: another stack sharing the cluster has its own topics.
        self._topics = [dlq_topic(t) for t in settings.topics.consumed()]
        self._groups: dict[tuple[str, str], DeadLetterGroup] = {}
        self._next: dict[TopicPartition, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.updated_at: float | None = None
        self.error: str | None = None

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    # -- reading (page handlers, any thread) ---------------------------------------------
    def groups(self) -> list[DeadLetterGroup]:
        with self._lock:
            return sorted(
                (
                    DeadLetterGroup(g.topic, g.code, g.count, g.oldest, g.newest, deque(g.recent))
                    for g in self._groups.values()
                ),
                key=lambda g: (g.topic, g.code),
            )

    def add(self, letter: DeadLetter) -> None:
        with self._lock:
            group = self._groups.setdefault(
                (letter.topic, letter.code), DeadLetterGroup(letter.topic, letter.code)
            )
            group.count += 1
            group.oldest = min(group.oldest or letter.failed_at, letter.failed_at)
            group.newest = max(group.newest or letter.failed_at, letter.failed_at)
            group.recent.append(DeadLetterSummary.of(letter))

    # -- following ------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="dlq-index")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._settings.kafka_bootstrap_servers,
                client_id="revops-console-dlq",
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **aiokafka_options(self._settings),
            )
            try:
                await consumer.start()
                await self._read(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away: say so on the page, try again
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("dlq_index_failed", error=self.error)
                await asyncio.sleep(5.0)
            finally:
                with contextlib.suppress(Exception):
                    await stop_consumer(consumer)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        assigned: list[TopicPartition] = []
        discovered = 0.0
        while True:
            if time.monotonic() - discovered > DISCOVER_EVERY_S:
                found = await dlq_partitions(self._settings, self._topics)
                discovered = time.monotonic()
                if set(found) != set(assigned):
                    assigned = found
                    consumer.assign(assigned)
                    for tp in assigned:  # resume where this index stopped (no double count)
                        consumer.seek(tp, self._next[tp])
            if not assigned:
                self.updated_at = time.time()
                await asyncio.sleep(1.0)
                continue
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < self._next[tp]:
                        continue
                    self._next[tp] = r.offset + 1
                    self.add(
                        DeadLetter.from_record(
                            r.topic, r.partition, r.offset, r.timestamp, r.key, r.value
                        )
                    )
            self.updated_at = time.time()
            self.error = None


@dataclass(frozen=True)
class ReplayPlan:
    """What a dry run found: the messages a confirmed replay would send back."""

    report: ReplayReport
    digest: str

    @property
    def would_replay(self) -> int:
        return self.report.count(Action.WOULD_REPLAY)


class SelectionChangedError(Exception):
    pass


def _digest(report: ReplayReport) -> str:
    ids = sorted(o.message.id for o in report.outcomes if o.action is Action.WOULD_REPLAY)
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]


class Replayer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def dry_run(self, topic: str, code: str) -> ReplayPlan:
        report = await self._run(topic, code, ReplayOptions(dry_run=True))
        return ReplayPlan(report, _digest(report))

    async def confirm(self, topic: str, code: str, digest: str) -> ReplayReport:
        """Replay what the dry run with this digest listed; refuse if that changed."""
        plan = await self.dry_run(topic, code)
        if plan.digest != digest:
            raise SelectionChangedError(
                f"the dead letters of {topic} / {code} changed since the dry run; "
                "review the new dry run before replaying"
            )
        if plan.would_replay == 0:
            return plan.report
        return await self._run(topic, code, ReplayOptions(limit=plan.would_replay))

    async def _run(self, topic: str, code: str, options: ReplayOptions) -> ReplayReport:
        replay_log = replay_log_for(self._settings)
        try:
            return await replay(
                self._settings, Selection(topic=topic, code=code), options, replay_log
            )
        finally:
            replay_log.close()
