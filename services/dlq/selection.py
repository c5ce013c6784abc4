"""Which dead letters a command works on: `--topic`, `--code`, `--since`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.dlq.messages import DeadLetter, as_dlq_topic


def parse_since(text: str | None) -> datetime | None:
    """ISO 8601 date or date-time; without a zone it is UTC."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Selection:
    topic: str | None = None  # a DLQ topic or the topic it belongs to
    code: str | None = None
    since: datetime | None = None

    @property
    def topics(self) -> list[str] | None:
        return [as_dlq_topic(self.topic)] if self.topic else None

    def matches(self, message: DeadLetter) -> bool:
        if self.topic and message.topic != as_dlq_topic(self.topic):
            return False
        if self.code and message.code.casefold() != self.code.casefold():
            return False
        return self.since is None or message.failed_at >= self.since

    def apply(self, messages: Iterable[DeadLetter]) -> list[DeadLetter]:
        """The matching messages, oldest first (failure time, then position)."""
        chosen = [m for m in messages if self.matches(m)]
        return sorted(chosen, key=lambda m: (m.timestamp_ms, m.topic, m.partition, m.offset))


def counts(messages: Iterable[DeadLetter]) -> Counter[tuple[str, str]]:
    """(dlq topic, error code) -> number of messages."""
    return Counter((m.topic, m.code) for m in messages)
